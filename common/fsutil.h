/*
 * File helpers with the durability rules of CONVENTIONS.md.  The
 * implementation is per platform (common/unix/fsutil.c, common/win/fsutil.c);
 * the names are the same.  All functions return 0 or a negative err_code, and
 * put words in *cause (which may be NULL) on failure.
 */
#ifndef CERTAGENT_FSUTIL_H
#define CERTAGENT_FSUTIL_H

#include <stddef.h>

/* Returns a heap string "a/b" (platform separator), or NULL on allocation failure. */
char *fsutil_join(const char *a, const char *b);

/*
 * Reads a whole regular file into a heap buffer (NUL-terminated for
 * convenience; *len excludes the NUL).  A file larger than max bytes is
 * refused with -E_TOO_BIG before anything is allocated.  A missing file is
 * -E_NOT_FOUND.
 */
int fsutil_read_file(const char *path, size_t max, unsigned char **out, size_t *len, char **cause);

/*
 * Atomically and durably replaces path with data: a temp file in the same
 * directory is created exclusively with `mode` (e.g. 0600 for keys), written,
 * fsynced, renamed over path, and the directory is fsynced.  After a crash,
 * path holds either the old or the new content, never a torn file.
 */
int fsutil_write_atomic(const char *path, const void *data, size_t len, int mode, char **cause);

/*
 * Writes a new file that must not exist yet (O_EXCL), with mode, and fsyncs
 * it.  Used inside a directory that is later published by rename.
 */
int fsutil_write_new(const char *path, const void *data, size_t len, int mode, char **cause);

/* Creates path and missing parents with mode; an existing directory is fine. */
int fsutil_mkdir_p(const char *path, int mode, char **cause);

/* fsyncs a directory so that renames and creations in it are durable. */
int fsutil_fsync_dir(const char *path, char **cause);

/*
 * Renames from to to (replacing a file; for directories, `to` must not exist)
 * and fsyncs the parent directory of `to` (and of `from` when different).
 */
int fsutil_rename(const char *from, const char *to, char **cause);

/* Removes a file or a directory tree; a missing path is not an error. */
int fsutil_remove_tree(const char *path, char **cause);

/*
 * Makes linkpath show the directory `target` atomically.  On Unix this is a
 * relative symlink created under a temp name and renamed over linkpath; on
 * Windows a directory of copies replaced by rename.  `target` is relative to
 * the directory that holds linkpath.
 */
int fsutil_publish_dir(const char *target, const char *linkpath, char **cause);

/*
 * Reads where linkpath points (as given to fsutil_publish_dir) into a heap
 * string; -E_NOT_FOUND when linkpath does not exist.
 */
int fsutil_read_published(const char *linkpath, char **target, char **cause);

/* Removes what fsutil_publish_dir made at linkpath; a missing one is fine. */
int fsutil_unpublish(const char *linkpath, char **cause);
/* Is path something fsutil_publish_dir made (a symlink on Unix)? */
int fsutil_is_published(const char *path);

/* Creates one directory with mode; -E_EXISTS when it exists. */
int fsutil_mkdir(const char *path, int mode, char **cause);
/* Is path a directory (following links)? */
int fsutil_is_dir(const char *path);
/* Removes an empty directory; failures are ignored (best effort clean-up). */
void fsutil_rmdir(const char *path);

/* Does path exist (any type)? */
int fsutil_exists(const char *path);

/*
 * Takes an exclusive advisory lock on path (created 0600 when missing), held
 * until fsutil_unlock or process exit.  Another holder gives -E_BUSY.
 */
int fsutil_lock(const char *path, int *handle, char **cause);
void fsutil_unlock(int handle);

#endif
