# Protocol, versions and config: common/ only.
add_library(proto_under_test STATIC
  ${PROJECT_SOURCE_DIR}/common/err.c
  ${PROJECT_SOURCE_DIR}/common/version.c
  ${PROJECT_SOURCE_DIR}/common/proto.c
  ${PROJECT_SOURCE_DIR}/common/config.c
  ${PROJECT_SOURCE_DIR}/common/unix/fsutil.c
  ${PROJECT_SOURCE_DIR}/common/unix/sys.c
)
target_include_directories(proto_under_test PUBLIC ${PROJECT_SOURCE_DIR}/common)
target_compile_definitions(proto_under_test PUBLIC _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
target_link_libraries(proto_under_test PUBLIC PkgConfig::MSGPACK PkgConfig::CJSON OpenSSL::Crypto)

certagent_unit_test(test_proto test_proto.c proto_under_test)
certagent_unit_test(test_version test_version.c proto_under_test)
certagent_unit_test(test_config test_config.c proto_under_test)
