# Shell integration tests: each gets certagent, certctl, agent-up and tests/data.
foreach(name cli selfsigned import export signals killloop perms upgrade deploy diskfull
             leftovers clock bigstore)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/it-${name}.sh)
    add_test(NAME integration.${name}
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/it-${name}.sh
              $<TARGET_FILE:certagent> $<TARGET_FILE:certctl> $<TARGET_FILE:agent-up>
              ${PROJECT_SOURCE_DIR}/tests/data $<TARGET_FILE:certagent-upgrade-check>)
    set_tests_properties(integration.${name} PROPERTIES LABELS integration TIMEOUT 600)
  endif()
endforeach()
# The challenge responders through the agent's config (curl and openssl s_client as clients).
add_test(NAME integration.challenge
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/it-challenge.sh
          $<TARGET_FILE:certagent> $<TARGET_FILE:certctl> $<TARGET_FILE:agent-up>
          ${PROJECT_SOURCE_DIR}/tests/data $<TARGET_FILE:certagent-upgrade-check>)
set_tests_properties(integration.challenge PROPERTIES LABELS integration TIMEOUT 300)
# Every hostile or broken input of tests/data/bad/MANIFEST.tsv through one real agent.
add_test(NAME integration.bad-inputs
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/it-bad-inputs.sh
          $<TARGET_FILE:certagent> $<TARGET_FILE:certctl> $<TARGET_FILE:agent-up>
          ${PROJECT_SOURCE_DIR}/tests/data $<TARGET_FILE:certagent-upgrade-check>)
set_tests_properties(integration.bad-inputs PROPERTIES LABELS integration TIMEOUT 600)
