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

/*
 * Files outside the store (deploy targets, certctl export, the trust system
 * directory, hook programs) live in directories that other users may reach.
 * These functions never follow a symbolic link an attacker could plant:
 *
 * fsutil_dir_open opens the directory at an absolute path one component at a
 * time from the root, without following a symbolic link at any level (a link
 * anywhere is refused), and checks every directory on the way and the last
 * one: owned by root or by this process's effective user, and not writable by
 * group or others, except a sticky directory (such as /tmp) that is not the
 * last one, since in it only the owner of the next directory, already
 * checked, can replace that directory (sshd's StrictModes).  A refusal is
 * -E_DENIED with words naming the directory and why ("/srv/x is a symbolic
 * link", "/srv/www is writable by group (mode 0775)").  With
 * FSUTIL_DIR_CREATE, missing directories are created with exactly mode;
 * otherwise a missing one is -E_NOT_FOUND.  A relative path is -E_BAD_INPUT.
 * Windows: the path is checked for reparse points (symbolic links,
 * junctions) one component at a time; owners and ACLs are not checked there.
 */
#define FSUTIL_DIR_CREATE 1u

struct fsutil_dir;

int fsutil_dir_open(const char *path, unsigned flags, int mode, struct fsutil_dir **out,
                    char **cause);
/* Closes what fsutil_dir_open opened; NULL is a no-op. */
void fsutil_dir_free(struct fsutil_dir *dir);
/* The path the directory was opened as (for messages); borrowed. */
const char *fsutil_dir_path(const struct fsutil_dir *dir);

/*
 * fsutil_write_atomic for the file name (no separator) in dir: the temp file
 * is created relative to the directory (exclusively, never through a link),
 * written, fsynced and renamed over name, and the directory is fsynced.
 * Whatever name was (a link included) is replaced, never written through.
 */
int fsutil_dir_write(struct fsutil_dir *dir, const char *name, const void *data, size_t len,
                     int mode, char **cause);

/* Removes the file or link name (never followed) from dir; a missing one is fine. */
int fsutil_dir_remove(struct fsutil_dir *dir, const char *name, char **cause);

/*
 * The names of the regular files in dir (not links, not directories), a
 * heap array of heap strings; free with strv_free (strv.h).
 */
int fsutil_dir_list(struct fsutil_dir *dir, char ***names, size_t *n, char **cause);

/*
 * Writes path atomically through fsutil_dir_open(its directory, flags) and
 * fsutil_dir_write.  A relative path is taken from the working directory,
 * whose chain is checked like the rest.
 */
int fsutil_write_safe(const char *path, unsigned flags, const void *data, size_t len, int mode,
                      char **cause);

/*
 * Checks the program at the absolute path before the agent runs it: a regular
 * file owned by root or this process's user, not writable by group or
 * others, in directories that pass fsutil_dir_open's checks.  A symbolic link
 * (/bin -> usr/bin, /usr/bin/python3 -> python3.11) is followed only when it
 * is owned by root or this user and lies in a directory that passed, since
 * only that directory's owner can change it; its target is checked the same
 * way.  -E_DENIED with words naming the path and why.  Windows: reparse
 * points are refused; owners and ACLs are not checked there.
 */
int fsutil_check_program(const char *path, char **cause);

#endif
