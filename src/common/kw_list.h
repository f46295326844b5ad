/*
 * The one intrusive doubly linked list: a kw_link_t embedded in the element, a kw_list_t with
 * head, tail and count, and KW_LIST_ENTRY / KW_CONTAINER_OF from a link (or a member) back to its
 * element. Nothing is allocated; the functions are inline because the key server's connections,
 * the client's requests and the proxy's connections go on and off these lists on hot paths.
 *
 * The list is NULL terminated (no sentinel): a zeroed kw_list_t is empty, a zeroed link is on no
 * list, and a list may be moved by copying the struct and zeroing the old one. A link removed or
 * popped is cleared (prev and next NULL), so kw_list_linked can tell whether an element is on its
 * list. Iterate with the next link read before the current element may be removed:
 *     for (kw_link_t *k = l->head, *next; k != NULL; k = next) { next = k->next; ... }
 * Not thread safe: the owner of the list serialises access.
 */
#ifndef KW_LIST_H
#define KW_LIST_H

#include <stddef.h>

typedef struct kw_link_s {
    struct kw_link_s *prev;
    struct kw_link_s *next;
} kw_link_t;

typedef struct kw_list_s {
    kw_link_t *head;
    kw_link_t *tail;
    size_t n; /* links on the list */
} kw_list_t;

/* The struct of type whose member ptr points to. */
#define KW_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* The element of type whose kw_link_t member is link; NULL for a NULL link (link is evaluated
 * once, so KW_LIST_ENTRY(kw_list_pop_front(l), ...) is fine). */
#define KW_LIST_ENTRY(link, type, member) ((type *)kw_link_owner((link), offsetof(type, member)))

static inline void *kw_link_owner(kw_link_t *k, size_t offset)
{
    return k != NULL ? (void *)((char *)k - offset) : NULL;
}

/* Puts k (on no list) between prev and next, neighbours on l (NULL: that end of l). */
static inline void kw_list_insert(kw_list_t *l, kw_link_t *k, kw_link_t *prev, kw_link_t *next)
{
    k->prev = prev;
    k->next = next;
    if (prev != NULL)
        prev->next = k;
    else
        l->head = k;
    if (next != NULL)
        next->prev = k;
    else
        l->tail = k;
    l->n++;
}

/* Appends k (on no list) at the tail. */
static inline void kw_list_push_back(kw_list_t *l, kw_link_t *k)
{
    kw_list_insert(l, k, l->tail, NULL);
}

/* Inserts k (on no list) at the head. */
static inline void kw_list_push_front(kw_list_t *l, kw_link_t *k)
{
    kw_list_insert(l, k, NULL, l->head);
}

/* Takes k (on l) off l and clears its links. */
static inline void kw_list_remove(kw_list_t *l, kw_link_t *k)
{
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        l->head = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    else
        l->tail = k->prev;
    k->prev = NULL;
    k->next = NULL;
    l->n--;
}

/* Removes and returns the head (links cleared), or NULL when l is empty. */
static inline kw_link_t *kw_list_pop_front(kw_list_t *l)
{
    kw_link_t *k = l->head;
    if (k != NULL)
        kw_list_remove(l, k);
    return k;
}

/* Whether k is on l, for a k that is either on l or on no list (its links cleared). */
static inline int kw_list_linked(const kw_list_t *l, const kw_link_t *k)
{
    return k->prev != NULL || l->head == k;
}

/* Moves every link of src, in order, to the tail of dst; src is left empty. */
static inline void kw_list_splice(kw_list_t *dst, kw_list_t *src)
{
    if (src->head == NULL)
        return;
    if (dst->tail != NULL) {
        dst->tail->next = src->head;
        src->head->prev = dst->tail;
    } else {
        dst->head = src->head;
    }
    dst->tail = src->tail;
    dst->n += src->n;
    src->head = NULL;
    src->tail = NULL;
    src->n = 0;
}

#endif /* KW_LIST_H */
