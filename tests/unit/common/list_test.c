/*
 * The intrusive list (src/common/kw_list.h): push at either end and insert between two keep the
 * order; remove of the head, a middle, the tail and the only element relinks the rest and clears
 * the removed links; pop takes the head (NULL when empty); n counts; kw_list_linked tells on/off;
 * splice appends in order; a loop may remove the current element; KW_LIST_ENTRY and
 * KW_CONTAINER_OF find the element (NULL for NULL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kw_list.h"

typedef struct item_s {
    int value;
    kw_link_t link; /* not the first member: the offset must be subtracted */
} item_t;

/* Asserts that l holds exactly the values of want, in order, linked both ways. */
static void check(const kw_list_t *l, const int *want, size_t n)
{
    assert_int_equal(l->n, n);
    kw_link_t *prev = NULL;
    size_t i = 0;
    for (kw_link_t *k = l->head; k != NULL; k = k->next) {
        assert_true(i < n);
        assert_ptr_equal(k->prev, prev);
        assert_int_equal(KW_LIST_ENTRY(k, item_t, link)->value, want[i]);
        assert_true(kw_list_linked(l, k));
        prev = k;
        i++;
    }
    assert_int_equal(i, n);
    assert_ptr_equal(l->tail, prev);
}

static void assert_cleared(const kw_list_t *l, const item_t *it)
{
    assert_null(it->link.prev);
    assert_null(it->link.next);
    assert_false(kw_list_linked(l, &it->link));
}

/* l gets items 0..n-1 of v (values 0..n-1) pushed at the back. */
static void fill(kw_list_t *l, item_t *v, size_t n)
{
    memset(l, 0, sizeof(*l));
    memset(v, 0, n * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].value = (int)i;
        assert_false(kw_list_linked(l, &v[i].link));
        kw_list_push_back(l, &v[i].link);
    }
}

static void test_push(void **state)
{
    (void)state;
    kw_list_t l;
    item_t v[4];
    fill(&l, v, 3);
    check(&l, (const int[]){0, 1, 2}, 3);
    v[3].value = 3;
    kw_list_push_front(&l, &v[3].link);
    check(&l, (const int[]){3, 0, 1, 2}, 4);
    item_t mid = {.value = 9};
    kw_list_insert(&l, &mid.link, &v[0].link, &v[1].link);
    check(&l, (const int[]){3, 0, 9, 1, 2}, 5);

    kw_list_t f = {NULL, NULL, 0}; /* push_front onto an empty list sets the tail too */
    item_t a = {.value = 7}, b = {.value = 8};
    kw_list_push_front(&f, &a.link);
    check(&f, (const int[]){7}, 1);
    kw_list_push_front(&f, &b.link);
    check(&f, (const int[]){8, 7}, 2);
}

static void test_remove(void **state)
{
    (void)state;
    kw_list_t l;
    item_t v[5];
    fill(&l, v, 5);
    kw_list_remove(&l, &v[0].link); /* head */
    assert_cleared(&l, &v[0]);
    check(&l, (const int[]){1, 2, 3, 4}, 4);
    kw_list_remove(&l, &v[2].link); /* middle */
    assert_cleared(&l, &v[2]);
    check(&l, (const int[]){1, 3, 4}, 3);
    kw_list_remove(&l, &v[4].link); /* tail */
    assert_cleared(&l, &v[4]);
    check(&l, (const int[]){1, 3}, 2);
    kw_list_remove(&l, &v[3].link);
    kw_list_remove(&l, &v[1].link); /* the only one */
    assert_cleared(&l, &v[1]);
    check(&l, NULL, 0);
    assert_null(l.head);
    assert_null(l.tail);
    kw_list_push_back(&l, &v[2].link); /* a removed element goes on again */
    check(&l, (const int[]){2}, 1);
}

static void test_pop(void **state)
{
    (void)state;
    kw_list_t l;
    item_t v[3];
    fill(&l, v, 3);
    for (int i = 0; i < 3; i++) {
        kw_link_t *k = kw_list_pop_front(&l);
        item_t *it = KW_LIST_ENTRY(k, item_t, link);
        assert_ptr_equal(it, &v[i]);
        assert_cleared(&l, it);
        assert_int_equal(l.n, (size_t)(2 - i));
    }
    assert_null(kw_list_pop_front(&l));
    assert_null(KW_LIST_ENTRY(kw_list_pop_front(&l), item_t, link));
    check(&l, NULL, 0);
}

/* Removing the current element while iterating, with next read first. */
static void test_remove_while_iterating(void **state)
{
    (void)state;
    kw_list_t l;
    item_t v[6];
    fill(&l, v, 6);
    for (kw_link_t *k = l.head, *next; k != NULL; k = next) {
        next = k->next;
        if (KW_LIST_ENTRY(k, item_t, link)->value % 2 == 0)
            kw_list_remove(&l, k);
    }
    check(&l, (const int[]){1, 3, 5}, 3);
    for (kw_link_t *k = l.head, *next; k != NULL; k = next) {
        next = k->next;
        kw_list_remove(&l, k);
    }
    check(&l, NULL, 0);
}

static void test_splice_and_move(void **state)
{
    (void)state;
    kw_list_t a, b = {NULL, NULL, 0};
    item_t v[5];
    fill(&a, v, 3);
    kw_list_splice(&b, &a); /* into an empty list */
    check(&b, (const int[]){0, 1, 2}, 3);
    check(&a, NULL, 0);
    kw_list_splice(&b, &a); /* from an empty list */
    check(&b, (const int[]){0, 1, 2}, 3);
    v[3].value = 3;
    v[4].value = 4;
    kw_list_push_back(&a, &v[3].link);
    kw_list_push_back(&a, &v[4].link);
    kw_list_splice(&b, &a); /* onto the tail */
    check(&b, (const int[]){0, 1, 2, 3, 4}, 5);
    check(&a, NULL, 0);

    kw_list_t moved = b; /* NULL terminated: a copy of the struct is the list */
    memset(&b, 0, sizeof(b));
    kw_list_remove(&moved, &v[4].link);
    kw_list_remove(&moved, &v[0].link);
    check(&moved, (const int[]){1, 2, 3}, 3);
}

typedef struct outer_s {
    double pad;
    int inner;
} outer_t;

static void test_container_of(void **state)
{
    (void)state;
    outer_t o = {1.0, 5};
    int *p = &o.inner;
    assert_ptr_equal(KW_CONTAINER_OF(p, outer_t, inner), &o);
    item_t it = {.value = 9};
    assert_ptr_equal(KW_LIST_ENTRY(&it.link, item_t, link), &it);
    assert_null(KW_LIST_ENTRY((kw_link_t *)NULL, item_t, link));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_pop),
        cmocka_unit_test(test_remove_while_iterating),
        cmocka_unit_test(test_splice_and_move),
        cmocka_unit_test(test_container_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
