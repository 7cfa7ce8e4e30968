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

/* Pretty JSON of o on stdout, with a newline. */
void output_json(const cJSON *o);
/* JSON of o on one line of stdout (a stream of records, one a line). */
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
