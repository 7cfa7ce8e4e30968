/* certctl's output: aligned tables, JSON, dates. */
#ifndef CERTCTL_OUTPUT_H
#define CERTCTL_OUTPUT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

struct table;

struct table *table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (copied). */
void table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *f);
void table_free(struct table *t);

/*
 * --json: a run prints exactly one JSON object on stdout, errors included.
 * output_json_mode turns the mode on (main, before any command runs).
 * output_error records the run's error, {"code", "message", "detail", ...extra}
 * (extra's fields are added and extra is freed; the last error recorded
 * wins); it prints nothing.  output_finish, called once as certctl exits,
 * prints {"ok": false, "error": {...}} when the run printed no object and
 * failed (the recorded error, or one named after the exit code rc), {} when
 * it printed none and succeeded, and returns rc.
 */
void output_json_mode(int on);
int output_json_mode_on(void);
void output_error(const char *code, const char *message, const char *detail, cJSON *extra);
int output_finish(int rc);

/* Pretty JSON of o on stdout, with a newline: the run's one object. */
void output_json(const cJSON *o);
/* JSON of o on one line of stdout: a record of a stream that does not end (logs --follow). */
void output_json_line(const cJSON *o);
/* "certctl: warning: ..." on stderr for each string of result's "warnings". */
void output_warnings(const cJSON *result);

/* "2026-11-23" (date) and "2026-11-23T10:00:00Z" (full). */
void output_date(int64_t t, char *buf, size_t len);
void output_time(int64_t t, char *buf, size_t len);

/* Accessors that never fail: "" / 0 when absent. */
const char *jstr(const cJSON *o, const char *key);
int64_t jint(const cJSON *o, const char *key);
int jbool(const cJSON *o, const char *key);
/* Joins a JSON array of strings with sep into buf. */
void jjoin(const cJSON *o, const char *key, const char *sep, char *buf, size_t len);

#endif
