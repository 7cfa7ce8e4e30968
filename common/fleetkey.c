#include "fleetkey.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>

#include "cluster-sys.h"
#include "err.h"
#include "fsutil.h"

int
fleetkey_read(const char *path, unsigned char key[FLEETKEY_LEN], char **cause)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int rc;

    if ((rc = fsutil_read_file(path, 4096, &data, &len, cause)) != 0) {
        if (rc == -E_TOO_BIG) {
            free(*cause);
            *cause = NULL;
            err_set(cause,
                    "fleet key file %s must hold exactly %d bytes (make one with certctl "
                    "fleet keygen FILE)",
                    path, FLEETKEY_LEN);
        }
        goto out;
    }
    if (len != FLEETKEY_LEN) {
        err_set(cause,
                "fleet key file %s holds %zu bytes, not exactly %d (make one with certctl fleet "
                "keygen FILE and copy it to every node)",
                path, len, FLEETKEY_LEN);
        rc = -E_BAD_INPUT;
        goto out;
    }
    if ((rc = cluster_sys_check_private(path, cause)) != 0)
        goto out;
    for (size_t i = 0; i < FLEETKEY_LEN; i++)
        key[i] = data[i];
out:
    if (data != NULL) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
    return rc;
}

int
fleetkey_write(const char *path, char **cause)
{
    unsigned char key[FLEETKEY_LEN];
    int rc;

    if (RAND_bytes(key, sizeof(key)) != 1) {
        err_set(cause, "no random bytes for the fleet key");
        return -E_CRYPTO;
    }
    rc = fsutil_write_new(path, key, sizeof(key), 0600, cause);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}
