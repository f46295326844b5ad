/*
 * Handle table of master-secret mode (master.h): a fixed array of slots under a mutex, allocated
 * on first use and owned by the provider context. A slot is found from the handle's slot number
 * and then compared in constant time with the whole handle.
 */
#include "master.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "kw_clock.h"
#include "kw_reader.h"
#include "kw_writer.h"

#define MAGIC_LEN 16

static const uint8_t kw_ms_magic[MAGIC_LEN] = {0x00, 0x00, 'K', 'W', '-', 'M', 'S',  '-',
                                               'H',  'A',  'N', 'D', 'L', 'E', 0x00, 0x01};

typedef struct slot_s {
    int used;
    int64_t at; /* monotonic seconds when made */
    uint8_t handle[KW_MS_HANDLE_LEN];
    kw_ms_entry_t entry;
} slot_t;

struct kw_ms_table_s {
    pthread_mutex_t lock;
    slot_t slots[KW_MS_SLOTS];
};

static void slot_clear(slot_t *s)
{
    if (s->used)
        kw_key_free(s->entry.key);
    OPENSSL_cleanse(s, sizeof(*s));
}

void kw_ms_table_free(kw_ms_table_t *table)
{
    if (table == NULL)
        return;
    for (size_t i = 0; i < KW_MS_SLOTS; i++)
        slot_clear(&table->slots[i]);
    pthread_mutex_destroy(&table->lock);
    OPENSSL_free(table);
}

/* pctx's table, created on first use (under pctx->lock). */
static kw_ms_table_t *table_of(kw_prov_ctx_t *pctx)
{
    pthread_mutex_lock(&pctx->lock);
    if (pctx->ms_table == NULL) {
        kw_ms_table_t *t = OPENSSL_zalloc(sizeof(*t));
        if (t != NULL) {
            pthread_mutex_init(&t->lock, NULL);
            pctx->ms_table = t;
        }
    }
    kw_ms_table_t *table = pctx->ms_table;
    pthread_mutex_unlock(&pctx->lock);
    return table;
}

/* A free or expired slot, else the oldest one (its handle is then dead). Under t->lock. */
static size_t pick_slot(kw_ms_table_t *t, int64_t now)
{
    size_t oldest = 0;
    for (size_t i = 0; i < KW_MS_SLOTS; i++) {
        slot_t *s = &t->slots[i];
        if (!s->used || now - s->at > KW_MS_TTL_SEC)
            return i;
        if (s->at < t->slots[oldest].at)
            oldest = i;
    }
    return oldest;
}

int kw_ms_handle_new(kw_prov_ctx_t *pctx, kw_key_t *key, const uint8_t *ct, size_t ct_len,
                     unsigned client_version, uint8_t handle[KW_MS_HANDLE_LEN])
{
    kw_ms_table_t *t = table_of(pctx);
    if (t == NULL || ct_len == 0 || ct_len > KW_MS_CT_MAX) {
        kw_prov_raise(pctx, KW_PROV_R_INTERNAL,
                      "master-secret mode: cannot record a pre-master secret of %zu bytes", ct_len);
        return 0;
    }
    memcpy(handle, kw_ms_magic, MAGIC_LEN);
    if (RAND_bytes(handle + MAGIC_LEN + 2, KW_MS_HANDLE_LEN - MAGIC_LEN - 2) != 1) {
        kw_prov_raise(pctx, KW_PROV_R_INTERNAL, "master-secret mode: no random bytes");
        return 0;
    }
    int64_t now = kw_clock_s();
    pthread_mutex_lock(&t->lock);
    size_t i = pick_slot(t, now);
    slot_t *s = &t->slots[i];
    slot_clear(s);
    kw_writer_t w;
    kw_writer_init(&w, handle + MAGIC_LEN, 2);
    if (kw_writer_u16(&w, (uint16_t)i) != 0) { /* cannot happen: 2 bytes for i < KW_MS_SLOTS */
        pthread_mutex_unlock(&t->lock);
        return 0;
    }
    s->used = 1;
    s->at = now;
    memcpy(s->handle, handle, KW_MS_HANDLE_LEN);
    kw_key_up_ref(key);
    s->entry.key = key;
    s->entry.client_version = client_version;
    s->entry.ct_len = ct_len;
    memcpy(s->entry.ct, ct, ct_len);
    pthread_mutex_unlock(&t->lock);
    return 1;
}

int kw_ms_is_handle(const uint8_t *s, size_t len)
{
    return s != NULL && len == KW_MS_HANDLE_LEN && CRYPTO_memcmp(s, kw_ms_magic, MAGIC_LEN) == 0;
}

int kw_ms_handle_take(kw_prov_ctx_t *pctx, const uint8_t handle[KW_MS_HANDLE_LEN],
                      kw_ms_entry_t *out)
{
    kw_ms_table_t *t = table_of(pctx);
    kw_reader_t r;
    uint16_t i = 0;
    int found = 0;
    kw_reader_init(&r, handle + MAGIC_LEN, 2);
    if (t == NULL || kw_reader_u16(&r, &i) != 0 || i >= KW_MS_SLOTS ||
        !kw_ms_is_handle(handle, KW_MS_HANDLE_LEN))
        return 0;
    pthread_mutex_lock(&t->lock);
    slot_t *s = &t->slots[i];
    if (s->used && CRYPTO_memcmp(s->handle, handle, KW_MS_HANDLE_LEN) == 0) {
        if (kw_clock_s() - s->at <= KW_MS_TTL_SEC) {
            *out = s->entry; /* the key reference moves to the caller */
            s->used = 0;
            found = 1;
        }
        slot_clear(s);
    }
    pthread_mutex_unlock(&t->lock);
    return found;
}
