/*
 * Import of DER input: certificates (common/pem.c pem_read_certs), a private key
 * (agent/keys.c keys_parse, without and with a password), then the checks the
 * import job makes (key match, chain order, description).  Same steps as
 * fuzz_pem; the seeds differ (tests/fuzz/corpus/fuzz_der).
 */
#include "fuzz.h"
#include "import-common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_import_pem_der(data, size);
    return 0;
}
