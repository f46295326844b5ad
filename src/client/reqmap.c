/*
 * Request id map (kwc_reqmap.h): a slot table indexed by the low bits of the id, with a ring of
 * free slots reused oldest first and a per-slot generation in the high bits.
 */
#include "kwc_reqmap.h"

#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "kw_guard.h"

#define SLOT_MASK (KW_REQMAP_MAX - 1u)
#define GEN_MAX   ((1u << (32 - KW_REQMAP_SLOT_BITS)) - 1u)

/* Grows the table to new_cap slots; the new slots join the ring after the existing free ones. */
static int grow(kw_reqmap_t *m, size_t new_cap)
{
    kw_reqmap_slot_t *slots = realloc(m->slots, new_cap * sizeof(*slots));
    KW_ENSURE(slots != NULL, KW_ENOMEM);
    m->slots = slots;
    uint32_t *ring = malloc(new_cap * sizeof(*ring));
    KW_ENSURE(ring != NULL, KW_ENOMEM);
    for (size_t i = 0; i < m->nfree; i++)
        ring[i] = m->ring[(m->head + i) % m->cap];
    for (size_t i = m->cap; i < new_cap; i++) {
        slots[i].ptr = NULL;
        slots[i].id = (uint32_t)i; /* generation 0: the first id handed out has generation 1 */
        ring[m->nfree++] = (uint32_t)i;
    }
    free(m->ring);
    m->ring = ring;
    m->head = 0;
    m->cap = new_cap;
    return 0;
}

int kw_reqmap_init(kw_reqmap_t *m, size_t initial)
{
    memset(m, 0, sizeof(*m));
    if (initial < 16)
        initial = 16;
    if (initial > KW_REQMAP_MAX)
        initial = KW_REQMAP_MAX;
    if (grow(m, initial) != 0) {
        kw_reqmap_destroy(m);
        return KW_ENOMEM;
    }
    return 0;
}

void kw_reqmap_destroy(kw_reqmap_t *m)
{
    free(m->slots);
    free(m->ring);
    memset(m, 0, sizeof(*m));
}

int kw_reqmap_add(kw_reqmap_t *m, void *ptr, uint32_t *id)
{
    KW_ENSURE(ptr != NULL && id != NULL, KW_EINVAL);
    if (m->nfree == 0) {
        KW_ENSURE(m->cap < KW_REQMAP_MAX, KW_EBUSY);
        KW_GUARD(grow(m, m->cap * 2 > KW_REQMAP_MAX ? KW_REQMAP_MAX : m->cap * 2));
    }
    uint32_t slot = m->ring[m->head];
    m->head = (m->head + 1) % m->cap;
    m->nfree--;
    uint32_t gen = (m->slots[slot].id >> KW_REQMAP_SLOT_BITS) + 1;
    if (gen > GEN_MAX)
        gen = 1;
    m->slots[slot].id = (gen << KW_REQMAP_SLOT_BITS) | slot;
    m->slots[slot].ptr = ptr;
    *id = m->slots[slot].id;
    return 0;
}

void *kw_reqmap_get(const kw_reqmap_t *m, uint32_t id)
{
    uint32_t slot = id & SLOT_MASK;
    if (slot >= m->cap || m->slots[slot].id != id)
        return NULL;
    return m->slots[slot].ptr;
}

void *kw_reqmap_remove(kw_reqmap_t *m, uint32_t id)
{
    uint32_t slot = id & SLOT_MASK;
    if (slot >= m->cap || m->slots[slot].id != id || m->slots[slot].ptr == NULL)
        return NULL;
    void *ptr = m->slots[slot].ptr;
    m->slots[slot].ptr = NULL;
    m->ring[(m->head + m->nfree) % m->cap] = slot;
    m->nfree++;
    return ptr;
}

size_t kw_reqmap_count(const kw_reqmap_t *m)
{
    return m->cap - m->nfree;
}
