/* The sorted-by-name array of common/byname.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "byname.h"
#include "err.h"

#define COUNT 1000

/* A record with its name not at offset 0, as the agent's are. */
struct rec {
    int value;
    char *name;
};

static struct rec recs[COUNT];
static char names[COUNT][16];

/* Fills a with the COUNT records inserted in a shuffled order. */
static void
fill(struct byname *a)
{
    size_t order[COUNT];

    byname_init(a, offsetof(struct rec, name));
    for (size_t i = 0; i < COUNT; i++) {
        snprintf(names[i], sizeof(names[i]), "n%05zu", i * 7 % COUNT);
        recs[i].value = (int)i;
        recs[i].name = names[i];
        order[i] = i;
    }
    srand(1);
    for (size_t i = COUNT - 1; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1), t = order[i];

        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < COUNT; i++) {
        struct rec *r = &recs[order[i]];
        int found;
        size_t pos = byname_pos(a, r->name, &found);

        assert_int_equal(found, 0);
        assert_int_equal(byname_insert(a, pos, r), 0);
    }
}

static void
assert_sorted(const struct byname *a)
{
    for (size_t i = 1; i < a->n; i++) {
        const struct rec *x = a->items[i - 1], *y = a->items[i];

        assert_true(strcmp(x->name, y->name) < 0);
    }
}

static void
test_order(void **state)
{
    struct byname a;

    (void)state;
    fill(&a);
    assert_int_equal(a.n, COUNT);
    assert_sorted(&a);
    assert_string_equal(((struct rec *)a.items[0])->name, "n00000");
    assert_string_equal(((struct rec *)a.items[COUNT - 1])->name, "n00999");
    byname_free(&a);
    assert_int_equal(a.n, 0);
    assert_null(a.items);
    byname_free(NULL);
}

static void
test_find(void **state)
{
    struct byname a;
    int found;

    (void)state;
    fill(&a);
    for (size_t i = 0; i < COUNT; i++) {
        struct rec *r = byname_find(&a, names[i]);

        assert_non_null(r);
        assert_ptr_equal(r, &recs[i]);
        assert_ptr_equal(a.items[byname_pos(&a, names[i], &found)], r);
        assert_int_equal(found, 1);
    }
    /* Misses, with the place each would go. */
    assert_null(byname_find(&a, ""));
    assert_int_equal(byname_pos(&a, "", &found), 0);
    assert_int_equal(found, 0);
    assert_null(byname_find(&a, "n00500x"));
    assert_int_equal(byname_pos(&a, "n00500x", &found), 501);
    assert_int_equal(found, 0);
    assert_null(byname_find(&a, "z"));
    assert_int_equal(byname_pos(&a, "z", &found), COUNT);
    assert_int_equal(found, 0);
    byname_free(&a);

    /* An empty array finds nothing. */
    byname_init(&a, offsetof(struct rec, name));
    assert_null(byname_find(&a, "n00000"));
    assert_int_equal(byname_pos(&a, "n00000", &found), 0);
    assert_int_equal(found, 0);
}

static void
test_remove(void **state)
{
    struct byname a;
    struct rec *r;
    size_t pos;
    int found;

    (void)state;
    fill(&a);
    r = byname_remove(&a, 0);
    assert_string_equal(r->name, "n00000");
    r = byname_remove(&a, a.n - 1);
    assert_string_equal(r->name, "n00999");
    r = byname_remove(&a, a.n / 2);
    assert_string_equal(r->name, "n00500");
    assert_int_equal(a.n, COUNT - 3);
    assert_sorted(&a);
    assert_null(byname_find(&a, "n00000"));
    assert_null(byname_find(&a, "n00500"));
    assert_null(byname_find(&a, "n00999"));
    assert_non_null(byname_find(&a, "n00001"));
    assert_non_null(byname_find(&a, "n00998"));
    /* A removed record goes back where it was. */
    pos = byname_pos(&a, "n00500", &found);
    assert_int_equal(found, 0);
    assert_int_equal(pos, 499);
    assert_int_equal(byname_insert(&a, pos, r), 0);
    assert_sorted(&a);
    while (a.n > 0)
        byname_remove(&a, a.n - 1);
    assert_null(byname_find(&a, "n00001"));
    byname_free(&a);
}

static void
test_duplicates(void **state)
{
    struct byname a;
    struct rec dup = {.value = -1, .name = "n00500"};
    struct rec mid = {.value = -1, .name = "n00500a"};
    int found;
    size_t pos;

    (void)state;
    fill(&a);
    /* The same name is refused at its own place and next to it. */
    pos = byname_pos(&a, dup.name, &found);
    assert_int_equal(found, 1);
    assert_int_equal(byname_insert(&a, pos, &dup), -E_EXISTS);
    assert_int_equal(byname_insert(&a, pos + 1, &dup), -E_EXISTS);
    /* A position that would break the order is refused. */
    assert_int_equal(byname_insert(&a, 0, &mid), -E_BAD_INPUT);
    assert_int_equal(byname_insert(&a, COUNT, &mid), -E_BAD_INPUT);
    assert_int_equal(byname_insert(&a, COUNT + 1, &mid), -E_BAD_INPUT);
    assert_int_equal(a.n, COUNT);
    assert_ptr_equal(byname_find(&a, "n00500"), &recs[500 * 143 % COUNT]);
    assert_sorted(&a);
    byname_free(&a);
}

static void
test_append_sort(void **state)
{
    struct byname a;
    struct rec dup = {.value = -1, .name = "n00042"};

    (void)state;
    byname_init(&a, offsetof(struct rec, name));
    assert_int_equal(byname_sort(&a), 0);
    for (size_t i = 0; i < COUNT; i++) {
        snprintf(names[i], sizeof(names[i]), "n%05zu", (COUNT - 1 - i) * 3 % COUNT);
        recs[i].name = names[i];
        assert_int_equal(byname_append(&a, &recs[i]), 0);
    }
    assert_int_equal(byname_sort(&a), 0);
    assert_int_equal(a.n, COUNT);
    assert_sorted(&a);
    assert_non_null(byname_find(&a, "n00042"));
    /* Two records with one name are reported. */
    assert_int_equal(byname_append(&a, &dup), 0);
    assert_int_equal(byname_sort(&a), -E_EXISTS);
    assert_int_equal(a.n, COUNT + 1);
    byname_free(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),       cmocka_unit_test(test_find),
        cmocka_unit_test(test_remove),      cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_append_sort),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
