/*
 * The temporary files that fsutil_write_atomic leaves when a process dies
 * mid-write ("NAME.tmp-PID-N").  They may hold a private key.
 */
#ifndef CERTAGENT_TEMPS_H
#define CERTAGENT_TEMPS_H

/*
 * Removes them from dir, those of this process excepted; with base, only
 * those of the file base ("privkey.pem").  Logs each.  Any thread; returns
 * how many went.
 */
unsigned temps_remove_stale(const char *dir, const char *base);

struct fsutil_dir;
/* The same in a directory opened with fsutil_dir_open (outside the store). */
unsigned temps_remove_stale_in(struct fsutil_dir *dir, const char *base);

#endif
