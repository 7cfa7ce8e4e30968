#include "secret-file.h"

#include <windows.h>

#include "err.h"

int
platform_secret_file_check(const char *path, const char *key, char **cause)
{
    DWORD attrs = GetFileAttributesA(path);

    if (attrs == INVALID_FILE_ATTRIBUTES) {
        err_set(cause, "%s: cannot read %s (error %lu)", key, path, GetLastError());
        return -E_NOT_FOUND;
    }
    if (attrs & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)) {
        err_set(cause, "%s: %s is not a regular file", key, path);
        return -E_BAD_INPUT;
    }
    return 0;
}
