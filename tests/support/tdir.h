/*
 * A temporary directory for unit tests, and files in it by relative name
 * (tests/support/tdir.c).  Failures end the test (cmocka), except where a
 * function says what it returns.
 */
#ifndef CERTAGENT_TDIR_H
#define CERTAGENT_TDIR_H

#include <stddef.h>

#define TDIR_MAX 64

/* Makes /tmp/PREFIX-XXXXXX into dir (TDIR_MAX bytes). 0 or -1. */
int tdir_make(char *dir, const char *prefix);
/* Removes dir and everything in it. 0 or a negative E_* code. */
int tdir_remove(const char *dir);
/* dir/rel, heap. */
char *tdir_at(const char *dir, const char *rel);
/* Writes dir/rel atomically with mode. */
void tdir_put(const char *dir, const char *rel, const char *text, int mode);
/* Makes dir/rel and its parents, 0700. */
void tdir_mkdir(const char *dir, const char *rel);
/* Contents of dir/rel (links followed), heap and NUL-terminated; NULL when it cannot be read. */
char *tdir_slurp(const char *dir, const char *rel);
/* Permission bits of dir/rel (links followed), -1 when missing. */
int tdir_mode(const char *dir, const char *rel);

/* The names in the directory path (absolute), sorted and joined by ' ' ("" when empty). */
void tdir_list(const char *path, char *out, size_t len);

#endif
