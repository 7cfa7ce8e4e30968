/*
 * A sorted-by-name array of pointers to records.  Each record holds its name
 * as a `char *` member at a fixed offset (offsetof(struct x, name)); the
 * array keeps the records ordered by strcmp of that name, finds one by binary
 * search and grows as needed.  It owns the array only, never the records.
 *
 * Names are unique: byname_insert refuses a name already present.
 */
#ifndef CERTAGENT_BYNAME_H
#define CERTAGENT_BYNAME_H

#include <stddef.h>

struct byname {
    void **items;    /* items[0..n) sorted by name; read freely */
    size_t n;        /* the number of items */
    size_t cap;      /* allocated slots */
    size_t name_off; /* offset of the `char *` name inside a record */
};

/* An empty array for records whose name is the `char *` at name_off. */
void byname_init(struct byname *a, size_t name_off);
/* Frees the array (not the records) and leaves it empty; NULL is a no-op. */
void byname_free(struct byname *a);
/*
 * Position of name: *found 1 and its index if present, else *found 0 and the
 * index where it would be inserted to keep the order.
 */
size_t byname_pos(const struct byname *a, const char *name, int *found);
/* The record named name, or NULL. */
void *byname_find(const struct byname *a, const char *name);
/*
 * Inserts item at pos (from byname_pos with *found 0), shifting the later
 * items up: 0, -E_NOMEM (nothing changed), or -E_EXISTS / -E_BAD_INPUT when
 * the item's name is already present or does not belong at pos (nothing
 * changed).
 */
int byname_insert(struct byname *a, size_t pos, void *item);
/* Removes and returns the item at pos (< n), shifting the later items down. */
void *byname_remove(struct byname *a, size_t pos);
/*
 * Appends item without keeping the order, for loading many records at once;
 * byname_sort must follow before any other call.  0 or -E_NOMEM.
 */
int byname_append(struct byname *a, void *item);
/*
 * Sorts the items by name after byname_append: 0, -E_NOMEM (order
 * unchanged) or -E_EXISTS if two items share a name (sorted anyway).
 */
int byname_sort(struct byname *a);

#endif
