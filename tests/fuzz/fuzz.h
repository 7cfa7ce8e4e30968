/*
 * The libFuzzer entry point every target defines.  A target is built twice:
 * with clang's -fsanitize=fuzzer (CERTAGENT_FUZZ=ON, fuzz_NAME) and with
 * regress-main.c's main() in every build (fuzz_NAME_regress), which feeds the
 * committed reproducers and seeds to the same function.
 */
#ifndef CERTAGENT_FUZZ_H
#define CERTAGENT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
