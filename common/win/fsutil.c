/*
 * File helpers on Windows.  Writes are flushed (FlushFileBuffers) and
 * replaced with MoveFileEx(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
 * NTFS journals directory changes, so there is no directory fsync.  Without
 * symlink rights, a published directory is a directory of copies with a
 * .target file naming what it shows, replaced by two renames.
 */
#include "../fsutil.h"

#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include "../err.h"
#include "../strv.h"
#include "../sys.h"

static int
is_sep(char c)
{
    return c == '\\' || c == '/';
}

char *
fsutil_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int sep = la > 0 && !is_sep(a[la - 1]);
    char *s = malloc(la + (size_t)sep + lb + 1);

    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    if (sep)
        s[la] = '\\';
    memcpy(s + la + (size_t)sep, b, lb + 1);
    return s;
}

/* Words for GetLastError(), without the trailing line break. */
static const char *
win_error(DWORD e, char *buf, size_t len)
{
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e,
                             0, buf, (DWORD)len, NULL);

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.'))
        buf[--n] = '\0';
    if (n == 0)
        snprintf(buf, len, "error %lu", (unsigned long)e);
    return buf;
}

static int
win_code(DWORD e)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return -E_NOT_FOUND;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
        return -E_DENIED;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
        return -E_EXISTS;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return -E_NOMEM;
    default:
        return -E_IO;
    }
}

/* Sets *cause to "WHAT PATH: reason" and returns the code of the last error. */
static int
fail(char **cause, const char *what, const char *path)
{
    DWORD e = GetLastError();
    char buf[256];

    err_set(cause, "%s %s: %s", what, path, win_error(e, buf, sizeof(buf)));
    return win_code(e);
}

static char *
dir_of(const char *path)
{
    const char *last = NULL;

    for (const char *p = path; *p; p++) {
        if (is_sep(*p))
            last = p;
    }
    char *d;

    if (last == NULL)
        return strdup(".");
    if ((d = malloc((size_t)(last - path) + 1)) == NULL)
        return NULL;
    memcpy(d, path, (size_t)(last - path));
    d[last - path] = '\0';
    return d;
}

int
fsutil_read_file(const char *path, size_t max, unsigned char **out, size_t *len, char **cause)
{
    HANDLE h;
    LARGE_INTEGER size;
    unsigned char *buf = NULL;
    size_t got = 0;
    int rc = 0;

    *out = NULL;
    *len = 0;
    h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return fail(cause, "cannot read", path);
    if (!GetFileSizeEx(h, &size)) {
        rc = fail(cause, "cannot read", path);
        goto out;
    }
    if ((uint64_t)size.QuadPart > max) {
        err_set(cause, "%s is %lld bytes; at most %zu are accepted", path,
                (long long)size.QuadPart, max);
        rc = -E_TOO_BIG;
        goto out;
    }
    if ((buf = malloc((size_t)size.QuadPart + 1)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    while (got < (size_t)size.QuadPart) {
        DWORD n = 0;

        if (!ReadFile(h, buf + got, (DWORD)((size_t)size.QuadPart - got), &n, NULL)) {
            rc = fail(cause, "cannot read", path);
            goto out;
        }
        if (n == 0)
            break;
        got += n;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    CloseHandle(h);
    return rc;
}

/*
 * Creates path (disposition) and writes data.  A private mode (no group or
 * other bits, such as 0600 for keys) gets an explicit protected DACL for
 * SYSTEM and Administrators (sys_private_sd) from its creation on; other
 * files take their folder's inherited entries.
 */
static int
write_handle_file(const char *path, DWORD disposition, const void *data, size_t len, int mode,
                  char **cause)
{
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd = NULL;
    HANDLE h;
    const char *p = data;
    int rc = 0;

    if ((mode & 077) == 0) {
        if ((sd = sys_private_sd(0)) == NULL)
            return fail(cause, "cannot build the security of", path);
        sa.nLength = sizeof(sa);
        sa.lpSecurityDescriptor = sd;
        sa.bInheritHandle = FALSE;
    }
    h = CreateFileA(path, GENERIC_WRITE, 0, sd != NULL ? &sa : NULL, disposition,
                    FILE_ATTRIBUTE_NORMAL, NULL);
    if (sd != NULL)
        LocalFree(sd);
    if (h == INVALID_HANDLE_VALUE)
        return fail(cause, "cannot create", path);
    while (len > 0) {
        DWORD n = 0;

        if (!WriteFile(h, p, (DWORD)(len > 0x10000000 ? 0x10000000 : len), &n, NULL)) {
            rc = fail(cause, "cannot write", path);
            break;
        }
        p += n;
        len -= n;
    }
    if (rc == 0 && !FlushFileBuffers(h))
        rc = fail(cause, "cannot write", path);
    CloseHandle(h);
    if (rc != 0)
        DeleteFileA(path);
    return rc;
}

int
fsutil_write_new(const char *path, const void *data, size_t len, int mode, char **cause)
{
    return write_handle_file(path, CREATE_NEW, data, len, mode, cause);
}

int
fsutil_write_atomic(const char *path, const void *data, size_t len, int mode, char **cause)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    int rc = -E_EXISTS;

    if (tmp == NULL)
        return -E_NOMEM;
    /* The new file keeps its own DACL through the rename (MoveFileEx moves, never copies). */
    for (int attempt = 0; rc == -E_EXISTS && attempt < 100; attempt++) {
        snprintf(tmp, n, "%s.tmp-%lu-%d", path, (unsigned long)GetCurrentProcessId(), attempt);
        rc = write_handle_file(tmp, CREATE_NEW, data, len, mode, cause);
    }
    if (rc == 0 && !MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        rc = fail(cause, "cannot replace", path);
        DeleteFileA(tmp);
    }
    free(tmp);
    return rc;
}

/*
 * A private directory (mode without group or other bits, such as 0700 for
 * keys) gets the private DACL (sys_private_sd: SYSTEM, Administrators),
 * inherited by what is created in it; others inherit their parent's.
 */
static int
create_dir(const char *path, int mode)
{
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd;
    BOOL ok;

    if ((mode & 077) != 0)
        return CreateDirectoryA(path, NULL);
    if ((sd = sys_private_sd(1)) == NULL)
        return FALSE;
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = sd;
    sa.bInheritHandle = FALSE;
    ok = CreateDirectoryA(path, &sa);
    LocalFree(sd);
    return ok;
}

int
fsutil_mkdir(const char *path, int mode, char **cause)
{
    if (!create_dir(path, mode))
        return fail(cause, "cannot create directory", path);
    return 0;
}

int
fsutil_is_dir(const char *path)
{
    DWORD a = GetFileAttributesA(path);

    return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

void
fsutil_rmdir(const char *path)
{
    RemoveDirectoryA(path);
}

int
fsutil_mkdir_p(const char *path, int mode, char **cause)
{
    char *p = strdup(path);
    size_t start = 0, n;
    int rc = 0;

    if (p == NULL)
        return -E_NOMEM;
    n = strlen(p);
    /* Skip a drive ("C:\") or a UNC/device prefix ("\\server\share\"). */
    if (n >= 2 && p[1] == ':')
        start = 3;
    else if (n >= 2 && is_sep(p[0]) && is_sep(p[1]))
        start = n; /* do not create UNC components */
    for (size_t i = start; i <= n; i++) {
        if (i < n && !is_sep(p[i]))
            continue;
        {
            char c = p[i];

            p[i] = '\0';
            if (p[0] != '\0' && !create_dir(p, i == n ? mode : 0755) &&
                GetLastError() != ERROR_ALREADY_EXISTS) {
                rc = fail(cause, "cannot create directory", p);
                goto out;
            }
            p[i] = c;
        }
    }
    if (!fsutil_is_dir(path)) {
        err_set(cause, "%s exists and is not a directory", path);
        rc = -E_EXISTS;
    }
out:
    free(p);
    return rc;
}

int
fsutil_fsync_dir(const char *path, char **cause)
{
    (void)path;
    (void)cause;
    return 0;
}

int
fsutil_rename(const char *from, const char *to, char **cause)
{
    DWORD flags = MOVEFILE_WRITE_THROUGH;

    if (!fsutil_is_dir(from))
        flags |= MOVEFILE_REPLACE_EXISTING;
    if (!MoveFileExA(from, to, flags))
        return fail(cause, "cannot rename", from);
    return 0;
}

int
fsutil_remove_tree(const char *path, char **cause)
{
    DWORD a = GetFileAttributesA(path);
    WIN32_FIND_DATAA fd;
    HANDLE find;
    char *pattern;
    int rc = 0;

    if (a == INVALID_FILE_ATTRIBUTES)
        return 0;
    if (!(a & FILE_ATTRIBUTE_DIRECTORY) || (a & FILE_ATTRIBUTE_REPARSE_POINT)) {
        if (a & FILE_ATTRIBUTE_READONLY)
            SetFileAttributesA(path, a & ~(DWORD)FILE_ATTRIBUTE_READONLY);
        if ((a & FILE_ATTRIBUTE_DIRECTORY) ? !RemoveDirectoryA(path) : !DeleteFileA(path))
            return fail(cause, "cannot remove", path);
        return 0;
    }
    if ((pattern = fsutil_join(path, "*")) == NULL)
        return -E_NOMEM;
    find = FindFirstFileA(pattern, &fd);
    free(pattern);
    if (find != INVALID_HANDLE_VALUE) {
        do {
            char *child;

            if (strcmp(fd.cFileName, ".") == 0 || strcmp(fd.cFileName, "..") == 0)
                continue;
            if ((child = fsutil_join(path, fd.cFileName)) == NULL) {
                rc = -E_NOMEM;
                break;
            }
            rc = fsutil_remove_tree(child, cause);
            free(child);
        } while (rc == 0 && FindNextFileA(find, &fd));
        FindClose(find);
    }
    if (rc == 0 && !RemoveDirectoryA(path))
        rc = fail(cause, "cannot remove", path);
    return rc;
}

/*
 * Is the file at path private: its DACL lets in only SYSTEM, Administrators
 * and this account, set on it rather than inherited (a key)?
 */
static int
is_private_file(const char *path)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    int yes;

    if (GetNamedSecurityInfoA(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL,
                              NULL, &sd) != ERROR_SUCCESS)
        return 0;
    yes = sys_sd_private(sd, NULL) == 0;
    LocalFree(sd);
    return yes;
}

/*
 * Copies every regular file of src into the new directory dst; a private
 * file (a key) is written with the private DACL again, the others take
 * dst's inherited entries.
 */
static int
copy_dir_files(const char *src, const char *dst, char **cause)
{
    WIN32_FIND_DATAA fd;
    HANDLE find;
    char *pattern = fsutil_join(src, "*");
    int rc = 0;

    if (pattern == NULL)
        return -E_NOMEM;
    find = FindFirstFileA(pattern, &fd);
    free(pattern);
    if (find == INVALID_HANDLE_VALUE)
        return fail(cause, "cannot read directory", src);
    do {
        char *from, *to;
        unsigned char *data = NULL;
        size_t len = 0;

        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
            continue;
        from = fsutil_join(src, fd.cFileName);
        to = fsutil_join(dst, fd.cFileName);
        if (from == NULL || to == NULL)
            rc = -E_NOMEM;
        else if (!is_private_file(from)) {
            if (!CopyFileA(from, to, TRUE))
                rc = fail(cause, "cannot copy", from);
        } else if ((rc = fsutil_read_file(from, (size_t)1 << 24, &data, &len, cause)) == 0) {
            rc = write_handle_file(to, CREATE_NEW, data, len, 0600, cause);
            SecureZeroMemory(data, len);
        }
        free(data);
        free(from);
        free(to);
    } while (rc == 0 && FindNextFileA(find, &fd));
    FindClose(find);
    return rc;
}

int
fsutil_publish_dir(const char *target, const char *linkpath, char **cause)
{
    char *dir = dir_of(linkpath), *src = NULL, *tmp = NULL, *old = NULL, *marker = NULL;
    size_t n = strlen(linkpath) + 32;
    int rc;

    if (dir == NULL || (src = fsutil_join(dir, target)) == NULL || (tmp = malloc(n)) == NULL ||
        (old = malloc(n)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    snprintf(tmp, n, "%s.tmp-%lu", linkpath, (unsigned long)GetCurrentProcessId());
    snprintf(old, n, "%s.old-%lu", linkpath, (unsigned long)GetCurrentProcessId());
    fsutil_remove_tree(tmp, NULL);
    fsutil_remove_tree(old, NULL);
    if ((rc = fsutil_mkdir(tmp, 0755, cause)) != 0 || (rc = copy_dir_files(src, tmp, cause)) != 0)
        goto out;
    if ((marker = fsutil_join(tmp, ".target")) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    if ((rc = write_handle_file(marker, CREATE_NEW, target, strlen(target), 0644, cause)) != 0)
        goto out;
    if (fsutil_exists(linkpath) && !MoveFileExA(linkpath, old, MOVEFILE_WRITE_THROUGH)) {
        rc = fail(cause, "cannot replace", linkpath);
        goto out;
    }
    if (!MoveFileExA(tmp, linkpath, MOVEFILE_WRITE_THROUGH)) {
        rc = fail(cause, "cannot replace", linkpath);
        MoveFileExA(old, linkpath, MOVEFILE_WRITE_THROUGH);
        goto out;
    }
    fsutil_remove_tree(old, NULL);
out:
    if (rc != 0 && tmp != NULL)
        fsutil_remove_tree(tmp, NULL);
    free(dir);
    free(src);
    free(tmp);
    free(old);
    free(marker);
    return rc;
}

int
fsutil_read_published(const char *linkpath, char **target, char **cause)
{
    char *marker = fsutil_join(linkpath, ".target");
    unsigned char *data = NULL;
    size_t len = 0;
    int rc;

    *target = NULL;
    if (marker == NULL)
        return -E_NOMEM;
    rc = fsutil_read_file(marker, 4096, &data, &len, cause);
    free(marker);
    if (rc == 0)
        *target = (char *)data;
    return rc;
}

int
fsutil_unpublish(const char *linkpath, char **cause)
{
    return fsutil_remove_tree(linkpath, cause);
}

int
fsutil_is_published(const char *path)
{
    char *marker = fsutil_join(path, ".target");
    int yes = marker != NULL && fsutil_exists(marker);

    free(marker);
    return yes;
}

int
fsutil_exists(const char *path)
{
    return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
}

int
fsutil_lock(const char *path, int *handle, char **cause)
{
    OVERLAPPED ov;
    HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                           NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    int fd;

    *handle = -1;
    if (h == INVALID_HANDLE_VALUE)
        return fail(cause, "cannot open lock file", path);
    memset(&ov, 0, sizeof(ov));
    if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov)) {
        DWORD e = GetLastError();

        CloseHandle(h);
        if (e == ERROR_LOCK_VIOLATION || e == ERROR_IO_PENDING) {
            err_set(cause, "%s is locked by another process", path);
            return -E_BUSY;
        }
        SetLastError(e);
        return fail(cause, "cannot lock", path);
    }
    if ((fd = _open_osfhandle((intptr_t)h, 0)) < 0) {
        CloseHandle(h);
        return -E_IO;
    }
    *handle = fd;
    return 0;
}

void
fsutil_unlock(int handle)
{
    if (handle >= 0)
        _close(handle);
}

/*
 * Directories outside the store (fsutil.h): fsutil_dir_open and friends.
 *
 * What Windows checks here: every component of the path, from the drive or
 * share down, is a directory and no reparse point (symbolic link, junction,
 * mount point), tested with GetFileAttributes one prefix at a time; ".." is
 * refused.  What is not checked on Windows (only by the POSIX version, and
 * on real Windows by the data folder's protected DACL instead): owners and
 * who may write to each directory, and the window between the check and
 * the write, since the writes go by path, not relative to an open handle.
 */
struct fsutil_dir {
    char *path;
};

/* "C:\x", "C:/x" or "\\server\share\x". */
static int
win_absolute(const char *p)
{
    return (((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z')) && p[1] == ':' &&
            is_sep(p[2])) ||
           (is_sep(p[0]) && is_sep(p[1]));
}

/* One prefix of the walk: a directory, not a reparse point; created when asked. */
static int
check_prefix(const char *prefix, int create, int mode, char **cause)
{
    DWORD a = GetFileAttributesA(prefix);

    if (a == INVALID_FILE_ATTRIBUTES && create &&
        (GetLastError() == ERROR_FILE_NOT_FOUND || GetLastError() == ERROR_PATH_NOT_FOUND)) {
        if (!create_dir(prefix, mode) && GetLastError() != ERROR_ALREADY_EXISTS)
            return fail(cause, "cannot create directory", prefix);
        a = GetFileAttributesA(prefix);
    }
    if (a == INVALID_FILE_ATTRIBUTES) {
        DWORD e = GetLastError();

        if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND) {
            err_set(cause, "%s does not exist", prefix);
            return -E_NOT_FOUND;
        }
        return fail(cause, "cannot open directory", prefix);
    }
    if (a & FILE_ATTRIBUTE_REPARSE_POINT) {
        err_set(cause, "%s is a symbolic link or junction", prefix);
        return -E_DENIED;
    }
    if (!(a & FILE_ATTRIBUTE_DIRECTORY)) {
        err_set(cause, "%s is not a directory", prefix);
        return -E_IO;
    }
    return 0;
}

int
fsutil_dir_open(const char *path, unsigned flags, int mode, struct fsutil_dir **out, char **cause)
{
    struct fsutil_dir *dir = NULL;
    char *p = NULL;
    size_t start, n, seg;
    int rc = 0;

    *out = NULL;
    if (!win_absolute(path)) {
        err_set(cause, "%s is not an absolute path", path);
        return -E_BAD_INPUT;
    }
    if ((p = strdup(path)) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    n = strlen(p);
    /* The walk starts below the drive ("C:\") or the share ("\\server\share\"). */
    if (p[1] == ':') {
        start = 3;
    } else {
        int seps = 0;

        for (start = 2; start < n && !(is_sep(p[start]) && ++seps == 2); start++)
            ;
        start++;
    }
    for (size_t i = seg = start; i <= n; i++) {
        char c = p[i];

        if (i < n && !is_sep(c))
            continue;
        if (i - seg == 2 && p[seg] == '.' && p[seg + 1] == '.') {
            err_set(cause, "%s: '..' is not accepted in a path outside the store", path);
            rc = -E_BAD_INPUT;
            goto out;
        }
        if (i > seg) {
            p[i] = '\0';
            rc = check_prefix(p, (flags & FSUTIL_DIR_CREATE) != 0, i == n ? mode : 0755, cause);
            p[i] = c;
            if (rc != 0)
                goto out;
        }
        seg = i + 1;
    }
    if ((dir = calloc(1, sizeof(*dir))) == NULL) {
        rc = -E_NOMEM;
        goto out;
    }
    dir->path = p;
    p = NULL;
    *out = dir;
out:
    if (rc == -E_NOMEM)
        err_set(cause, "cannot open directory %s: out of memory", path);
    free(p);
    return rc;
}

void
fsutil_dir_free(struct fsutil_dir *dir)
{
    if (dir == NULL)
        return;
    free(dir->path);
    free(dir);
}

const char *
fsutil_dir_path(const struct fsutil_dir *dir)
{
    return dir->path;
}

/* name joined to the directory, when it is a plain file name; NULL with *rc otherwise. */
static char *
dir_child(const struct fsutil_dir *dir, const char *name, int *rc, char **cause)
{
    char *child;

    if (name[0] == '\0' || strpbrk(name, "\\/:") != NULL || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0) {
        err_set(cause, "'%s' is not a file name in %s", name, dir->path);
        *rc = -E_BAD_INPUT;
        return NULL;
    }
    if ((child = fsutil_join(dir->path, name)) == NULL) {
        err_set(cause, "cannot write %s: out of memory", name);
        *rc = -E_NOMEM;
    }
    return child;
}

int
fsutil_dir_write(struct fsutil_dir *dir, const char *name, const void *data, size_t len, int mode,
                 char **cause)
{
    int rc = 0;
    char *child = dir_child(dir, name, &rc, cause);

    if (child == NULL)
        return rc;
    /* MoveFileEx replaces a link at name itself, not what it points to. */
    rc = fsutil_write_atomic(child, data, len, mode, cause);
    free(child);
    return rc;
}

int
fsutil_dir_remove(struct fsutil_dir *dir, const char *name, char **cause)
{
    int rc = 0;
    char *child = dir_child(dir, name, &rc, cause);

    if (child == NULL)
        return rc;
    if (!DeleteFileA(child) && GetLastError() != ERROR_FILE_NOT_FOUND &&
        GetLastError() != ERROR_PATH_NOT_FOUND)
        rc = fail(cause, "cannot remove", child);
    free(child);
    return rc;
}

int
fsutil_dir_list(struct fsutil_dir *dir, char ***names, size_t *n, char **cause)
{
    WIN32_FIND_DATAA fd;
    HANDLE h;
    char *pattern = fsutil_join(dir->path, "*");
    char **v = NULL;
    size_t cap = 0;
    int rc = 0;

    *names = NULL;
    *n = 0;
    if (pattern == NULL)
        return -E_NOMEM;
    h = FindFirstFileA(pattern, &fd);
    free(pattern);
    if (h == INVALID_HANDLE_VALUE)
        return GetLastError() == ERROR_FILE_NOT_FOUND ? 0 : fail(cause, "cannot list", dir->path);
    do {
        if (fd.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT))
            continue;
        if (*n == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            char **nv = realloc(v, ncap * sizeof(*v));

            if (nv == NULL) {
                rc = -E_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if ((v[*n] = strdup(fd.cFileName)) == NULL) {
            rc = -E_NOMEM;
            break;
        }
        (*n)++;
    } while (FindNextFileA(h, &fd));
    FindClose(h);
    if (rc != 0) {
        err_set(cause, "cannot list %s: out of memory", dir->path);
        strv_free(v, *n);
        v = NULL;
        *n = 0;
    }
    *names = v;
    return rc;
}

int
fsutil_write_safe(const char *path, unsigned flags, const void *data, size_t len, int mode,
                  char **cause)
{
    struct fsutil_dir *dir = NULL;
    char full[MAX_PATH], *parent = NULL;
    const char *base;
    DWORD got = GetFullPathNameA(path, sizeof(full), full, NULL);
    int rc;

    if (got == 0 || got >= sizeof(full))
        return fail(cause, "cannot write", path);
    if ((parent = dir_of(full)) == NULL) {
        err_set(cause, "cannot write %s: out of memory", path);
        return -E_NOMEM;
    }
    base = full + strlen(parent) + 1;
    /* "C:\x": the directory is the drive's root, "C:". */
    if (strlen(parent) == 2 && parent[1] == ':') {
        char *root = fsutil_join(parent, "");

        free(parent);
        if ((parent = root) == NULL)
            return -E_NOMEM;
    }
    if ((rc = fsutil_dir_open(parent, flags, 0755, &dir, cause)) == 0)
        rc = fsutil_dir_write(dir, base, data, len, mode, cause);
    fsutil_dir_free(dir);
    free(parent);
    return rc;
}

int
fsutil_check_program(const char *path, char **cause)
{
    struct fsutil_dir *dir = NULL;
    char *parent = dir_of(path);
    DWORD a;
    int rc;

    if (parent == NULL)
        return -E_NOMEM;
    if ((rc = fsutil_dir_open(parent, 0, 0755, &dir, cause)) != 0)
        goto out;
    if ((a = GetFileAttributesA(path)) == INVALID_FILE_ATTRIBUTES) {
        rc = fail(cause, "cannot check", path);
    } else if (a & FILE_ATTRIBUTE_REPARSE_POINT) {
        err_set(cause, "%s is a symbolic link", path);
        rc = -E_DENIED;
    } else if (a & FILE_ATTRIBUTE_DIRECTORY) {
        err_set(cause, "%s is not a regular file", path);
        rc = -E_BAD_INPUT;
    }
out:
    fsutil_dir_free(dir);
    free(parent);
    return rc;
}
