/*
 * Request id map: hands out KWP request ids and finds the request a reply belongs to, in O(1).
 * An id is (generation << 20) | slot: the low 20 bits index a slot table, the high 12 bits count
 * how often that slot was reused, so a late reply to an abandoned try does not match the slot's
 * next owner. Free slots are reused oldest first (a ring), which makes such a collision need
 * capacity * 4096 allocations. Never returns id 0. Not thread-safe (the I/O thread owns it).
 * The map stores pointers it does not own.
 */
#ifndef KWC_REQMAP_H
#define KWC_REQMAP_H

#include <stddef.h>
#include <stdint.h>

#define KW_REQMAP_SLOT_BITS 20
#define KW_REQMAP_MAX       (1u << KW_REQMAP_SLOT_BITS)

typedef struct kw_reqmap_slot_s {
    void *ptr;
    uint32_t id; /* current or last id of this slot */
} kw_reqmap_slot_t;

typedef struct kw_reqmap_s {
    kw_reqmap_slot_t *slots;
    uint32_t *ring; /* free slot indices, oldest first */
    size_t cap;     /* slots allocated */
    size_t head;    /* ring position of the oldest free slot */
    size_t nfree;
} kw_reqmap_t;

/* Starts an empty map with room for initial entries (it grows on demand). 0 or KW_ENOMEM. */
int kw_reqmap_init(kw_reqmap_t *m, size_t initial);

/* Frees the tables (not the stored pointers). */
void kw_reqmap_destroy(kw_reqmap_t *m);

/* Stores ptr (non-NULL) and writes its new id. 0, KW_ENOMEM, or KW_EBUSY when 2^20 are in use. */
int kw_reqmap_add(kw_reqmap_t *m, void *ptr, uint32_t *id);

/* The pointer stored under id, or NULL. */
void *kw_reqmap_get(const kw_reqmap_t *m, uint32_t id);

/* Removes id and returns its pointer, or NULL when id is not in the map. */
void *kw_reqmap_remove(kw_reqmap_t *m, uint32_t id);

/* Entries in use. */
size_t kw_reqmap_count(const kw_reqmap_t *m);

#endif /* KWC_REQMAP_H */
