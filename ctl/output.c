#include "output.h"

#include <stdlib.h>
#include <string.h>

#include "sys.h"

struct table {
    size_t ncols;
    size_t nrows, cap;
    char **cells; /* (nrows + 1) * ncols, row 0 = headers */
};

struct table *
table_new(size_t ncols, const char *const *headers)
{
    struct table *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    table_add(t, headers);
    return t;
}

void
table_add(struct table *t, const char *const *cells)
{
    if (t == NULL)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **n = realloc(t->cells, cap * t->ncols * sizeof(*n));

        if (n == NULL)
            return;
        t->cells = n;
        t->cap = cap;
    }
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = strdup(cells[c] != NULL ? cells[c] : "");
    t->nrows++;
}

void
table_print(const struct table *t, FILE *f)
{
    size_t width[16] = {0};

    if (t == NULL)
        return;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols && c < 16; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t n = s != NULL ? strlen(s) : 0;

            if (n > width[c])
                width[c] = n;
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];

            if (c + 1 == t->ncols)
                fprintf(f, "%s\n", s != NULL ? s : "");
            else
                fprintf(f, "%-*s  ", (int)width[c < 16 ? c : 15], s != NULL ? s : "");
        }
    }
}

void
table_free(struct table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

/* What this run printed on stdout with --json, and its error. */
static struct {
    int on;
    unsigned objects; /* output_json */
    unsigned lines;   /* output_json_line */
    cJSON *error;     /* the last error recorded, or NULL */
} json_run;

void
output_json_mode(int on)
{
    json_run.on = on;
}

int
output_json_mode_on(void)
{
    return json_run.on;
}

void
output_error(const char *code, const char *message, const char *detail, cJSON *extra)
{
    cJSON *e = cJSON_CreateObject(), *it;

    if (e == NULL) {
        cJSON_Delete(extra);
        return;
    }
    cJSON_AddStringToObject(e, "code", code != NULL ? code : "E_INTERNAL");
    cJSON_AddStringToObject(e, "message", message != NULL ? message : "");
    if (detail != NULL)
        cJSON_AddStringToObject(e, "detail", detail);
    else
        cJSON_AddNullToObject(e, "detail");
    while (extra != NULL && (it = extra->child) != NULL) {
        cJSON_DetachItemViaPointer(extra, it);
        if (it->string != NULL && cJSON_GetObjectItemCaseSensitive(e, it->string) == NULL)
            cJSON_AddItemToObject(e, it->string, it);
        else
            cJSON_Delete(it);
    }
    cJSON_Delete(extra);
    cJSON_Delete(json_run.error);
    json_run.error = e;
}

/* The error of a run that failed without recording one: named after its exit code. */
static cJSON *
error_from_exit(int rc)
{
    char msg[160];
    const char *code = rc == 2 ? "E_USAGE" : rc == 3 ? "E_UNAVAILABLE" : "E_FAILED";

    snprintf(msg, sizeof(msg), "certctl failed with exit status %d; its message is on stderr", rc);
    output_error(code, msg, NULL, NULL);
    return json_run.error;
}

int
output_finish(int rc)
{
    cJSON *o;
    char *s;

    if (json_run.on && json_run.objects == 0 && (rc != 0 || json_run.lines == 0)) {
        o = cJSON_CreateObject();
        if (rc != 0) {
            cJSON_AddFalseToObject(o, "ok");
            cJSON_AddItemToObject(o, "error",
                                  json_run.error != NULL ? json_run.error : error_from_exit(rc));
            json_run.error = NULL;
        }
        /* A stream of records ends with the error as one more record. */
        s = json_run.lines > 0 ? cJSON_PrintUnformatted(o) : cJSON_Print(o);
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    }
    cJSON_Delete(json_run.error);
    json_run.error = NULL;
    fflush(stdout);
    return rc;
}

void
output_json(const cJSON *o)
{
    char *s = cJSON_Print(o);

    if (s != NULL) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
        json_run.objects++;
    }
}

void
output_json_line(const cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);

    if (s != NULL) {
        printf("%s\n", s);
        json_run.lines++;
    }
    free(s);
}

void
output_warnings(const cJSON *result)
{
    const cJSON *w;

    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(result, "warnings"))
    {
        if (cJSON_IsString(w))
            fprintf(stderr, "certctl: warning: %s\n", w->valuestring);
    }
}

void
output_date(int64_t t, char *buf, size_t len)
{
    struct tm tm;

    if (sys_gmtime(t, &tm) != 0 || strftime(buf, len, "%Y-%m-%d", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

void
output_time(int64_t t, char *buf, size_t len)
{
    sys_format_time(t, buf, len);
}

const char *
jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : "";
}

int64_t
jint(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

int
jbool(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

void
jjoin(const cJSON *o, const char *key, const char *sep, char *buf, size_t len)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *it;
    size_t used = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(it, arr)
    {
        int n;

        if (!cJSON_IsString(it))
            continue;
        n = snprintf(buf + used, len - used, "%s%s", used ? sep : "", it->valuestring);
        if (n < 0 || (size_t)n >= len - used) {
            /* Mark the cut. */
            if (len > 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
}
