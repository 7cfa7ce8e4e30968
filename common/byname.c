#include "byname.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* The name of item. */
static const char *
name_of(const struct byname *a, const void *item)
{
    const char *name;

    memcpy(&name, (const char *)item + a->name_off, sizeof(name));
    return name;
}

void
byname_init(struct byname *a, size_t name_off)
{
    a->items = NULL;
    a->n = a->cap = 0;
    a->name_off = name_off;
}

void
byname_free(struct byname *a)
{
    if (a == NULL)
        return;
    free(a->items);
    a->items = NULL;
    a->n = a->cap = 0;
}

size_t
byname_pos(const struct byname *a, const char *name, int *found)
{
    size_t lo = 0, hi = a->n;

    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name_of(a, a->items[mid]), name);

        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void *
byname_find(const struct byname *a, const char *name)
{
    int found;
    size_t pos = byname_pos(a, name, &found);

    return found ? a->items[pos] : NULL;
}

/* Room for one more item: 0 or -E_NOMEM. */
static int
grow(struct byname *a)
{
    size_t cap;
    void **items;

    if (a->n < a->cap)
        return 0;
    cap = a->cap ? a->cap * 2 : 16;
    if (cap > SIZE_MAX / sizeof(*items))
        return -E_NOMEM;
    if ((items = realloc(a->items, cap * sizeof(*items))) == NULL)
        return -E_NOMEM;
    a->items = items;
    a->cap = cap;
    return 0;
}

int
byname_insert(struct byname *a, size_t pos, void *item)
{
    const char *name = name_of(a, item);
    int rc;

    if (pos > a->n)
        return -E_BAD_INPUT;
    if (pos < a->n) {
        int c = strcmp(name, name_of(a, a->items[pos]));

        if (c == 0)
            return -E_EXISTS;
        if (c > 0)
            return -E_BAD_INPUT;
    }
    if (pos > 0) {
        int c = strcmp(name_of(a, a->items[pos - 1]), name);

        if (c == 0)
            return -E_EXISTS;
        if (c > 0)
            return -E_BAD_INPUT;
    }
    if ((rc = grow(a)) != 0)
        return rc;
    memmove(&a->items[pos + 1], &a->items[pos], (a->n - pos) * sizeof(*a->items));
    a->items[pos] = item;
    a->n++;
    return 0;
}

void *
byname_remove(struct byname *a, size_t pos)
{
    void *item = a->items[pos];

    memmove(&a->items[pos], &a->items[pos + 1], (a->n - pos - 1) * sizeof(*a->items));
    a->n--;
    return item;
}

int
byname_append(struct byname *a, void *item)
{
    int rc;

    if ((rc = grow(a)) != 0)
        return rc;
    a->items[a->n++] = item;
    return 0;
}

/* An item with its name, so that qsort needs no offset. */
struct named {
    const char *name;
    void *item;
};

static int
cmp_named(const void *x, const void *y)
{
    return strcmp(((const struct named *)x)->name, ((const struct named *)y)->name);
}

int
byname_sort(struct byname *a)
{
    struct named *v;
    int rc = 0;

    if (a->n < 2)
        return 0;
    if ((v = calloc(a->n, sizeof(*v))) == NULL)
        return -E_NOMEM;
    for (size_t i = 0; i < a->n; i++) {
        v[i].name = name_of(a, a->items[i]);
        v[i].item = a->items[i];
    }
    qsort(v, a->n, sizeof(*v), cmp_named);
    for (size_t i = 0; i < a->n; i++) {
        a->items[i] = v[i].item;
        if (i > 0 && strcmp(v[i - 1].name, v[i].name) == 0)
            rc = -E_EXISTS;
    }
    free(v);
    return rc;
}
