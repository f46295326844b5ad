/*
 * The key store: scans directories for *.key files (in name order, so results are stable), loads
 * each with keystore_load.c, adds the keys of PKCS#11 tokens (pkcs11_store.c), and builds sorted
 * indexes by key id, by SKI and by SNI name for binary-search lookups. Immutable after
 * kw_keystore_load_src returns; reference counted.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_log.h"
#include "keystore/keystore.h"
#include "keystore/keystore_load_internal.h"
#include "keystore/keyset.h"
#include "kw_hex.h"
#include "kw_strlist.h"

typedef struct ski_entry_s {
    uint8_t ski[KW_SKI_LEN];
    const kw_ks_key_t *key;
} ski_entry_t;

typedef struct sni_entry_s {
    char *name; /* lower case, owned */
    const kw_ks_key_t *key;
} sni_entry_t;

struct kw_keystore_s {
    atomic_uint refs;
    kw_ks_key_t *keys; /* n keys, in file name order */
    size_t n;
    const kw_ks_key_t **by_digest; /* n entries sorted by digest */
    ski_entry_t *by_ski;           /* n_ski entries sorted by SKI */
    size_t n_ski;
    sni_entry_t *by_sni; /* n_sni entries sorted by name, one per name (first key wins) */
    size_t n_sni;
};

/* ---- directory scan ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names (without ".key") of the key files in dir, sorted. */
static int list_key_files(const char *dir, char ***out, size_t *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "cannot read the key directory %s (check --keys)", dir);
        return KW_EIO;
    }
    char **v = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0) {
        e = readdir(d);
        if (e == NULL)
            break;
        size_t len = strlen(e->d_name);
        if (len <= 4 || e->d_name[0] == '.' || strcmp(e->d_name + len - 4, ".key") != 0)
            continue;
        rc = kw_strlist_addn(&v, &n, e->d_name, len - 4);
    }
    closedir(d);
    if (rc != 0) {
        kw_strlist_free(&v, &n);
        return rc;
    }
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_str);
    *out = v;
    *count = n;
    return 0;
}

/* ---- indexes ---- */

static int cmp_digest(const void *a, const void *b)
{
    const kw_ks_key_t *ka = *(const kw_ks_key_t *const *)a;
    const kw_ks_key_t *kb = *(const kw_ks_key_t *const *)b;
    return memcmp(ka->digest, kb->digest, KW_DIGEST_LEN);
}

static int cmp_ski(const void *a, const void *b)
{
    const ski_entry_t *ea = a;
    const ski_entry_t *eb = b;
    int c = memcmp(ea->ski, eb->ski, KW_SKI_LEN);
    if (c != 0)
        return c;
    return (ea->key->index > eb->key->index) - (ea->key->index < eb->key->index);
}

static int cmp_sni(const void *a, const void *b)
{
    const sni_entry_t *ea = a;
    const sni_entry_t *eb = b;
    int c = strcmp(ea->name, eb->name);
    if (c != 0)
        return c;
    return (ea->key->index > eb->key->index) - (ea->key->index < eb->key->index);
}

/* v (n entries of size bytes used of *cap) with room for one more: v itself, a larger copy, or
 * NULL (v unchanged) when out of memory. */
static void *room_for_one(void *v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return v;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *grown = realloc(v, ncap * size);
    if (grown != NULL)
        *cap = ncap;
    return grown;
}

static int add_ski(kw_keystore_t *s, const uint8_t *ski, const kw_ks_key_t *key, size_t *cap)
{
    ski_entry_t *grown = room_for_one(s->by_ski, s->n_ski, cap, sizeof(*s->by_ski));
    if (grown == NULL)
        return KW_ENOMEM;
    s->by_ski = grown;
    memcpy(s->by_ski[s->n_ski].ski, ski, KW_SKI_LEN);
    s->by_ski[s->n_ski].key = key;
    s->n_ski++;
    return 0;
}

/* Keeps a copy of the certificate's names in the key itself (for kw_keystore_key_covers_sni). */
static int copy_names(kw_ks_key_t *key, const kw_ks_names_t *names)
{
    for (size_t i = 0; i < names->n; i++) {
        if (kw_strlist_add(&key->names, &key->n_names, names->v[i]) != 0)
            return KW_ENOMEM;
    }
    return 0;
}

/* Takes ownership of the strings in names. */
static int add_names(kw_keystore_t *s, kw_ks_names_t *names, const kw_ks_key_t *key, size_t *cap)
{
    for (size_t i = 0; i < names->n; i++) {
        sni_entry_t *grown = room_for_one(s->by_sni, s->n_sni, cap, sizeof(*s->by_sni));
        if (grown == NULL)
            return KW_ENOMEM;
        s->by_sni = grown;
        s->by_sni[s->n_sni].name = names->v[i];
        s->by_sni[s->n_sni].key = key;
        s->n_sni++;
        names->v[i] = NULL;
    }
    return 0;
}

/* Sorts the indexes and drops duplicate SKI / SNI entries (the first key in file order wins). */
static void finish_indexes(kw_keystore_t *s)
{
    if (s->n > 0)
        qsort(s->by_digest, s->n, sizeof(*s->by_digest), cmp_digest);
    if (s->n_ski > 0)
        qsort(s->by_ski, s->n_ski, sizeof(*s->by_ski), cmp_ski);
    size_t w = 0;
    for (size_t r = 0; r < s->n_ski; r++) {
        if (w > 0 && memcmp(s->by_ski[w - 1].ski, s->by_ski[r].ski, KW_SKI_LEN) == 0)
            continue;
        s->by_ski[w++] = s->by_ski[r];
    }
    s->n_ski = w;
    if (s->n_sni > 0)
        qsort(s->by_sni, s->n_sni, sizeof(*s->by_sni), cmp_sni);
    w = 0;
    for (size_t r = 0; r < s->n_sni; r++) {
        if (w > 0 && strcmp(s->by_sni[w - 1].name, s->by_sni[r].name) == 0) {
            free(s->by_sni[r].name);
            continue;
        }
        s->by_sni[w++] = s->by_sni[r];
    }
    s->n_sni = w;
}

/* A store being loaded: the store, its index capacities, the key ids taken so far and what the
 * key files' loads share. */
typedef struct build_s {
    kw_keystore_t *s;
    size_t ski_cap;
    size_t sni_cap;
    kw_ks_keyset_t seen;
    kw_ks_loader_t loader;
} build_t;

/* Indexes the key just loaded into slot s->n (names: its certificate's, taken over). Returns 1
 * when it was added, 0 when refused as a duplicate, <0 fatal. what names it in logs. */
static int add_key(build_t *b, const char *what, kw_ks_names_t *names, const uint8_t *cert_ski,
                   int has_cert_ski)
{
    kw_keystore_t *s = b->s;
    kw_ks_key_t *key = &s->keys[s->n];
    if (!kw_ks_keyset_add(&b->seen, key->digest)) {
        kw_warn("key %s refused: the same key is already loaded from elsewhere", what);
        kw_ks_key_clear(key);
        kw_ks_names_free(names);
        return 0;
    }
    key->index = s->n;
    s->by_digest[s->n] = key;
    if (has_cert_ski) {
        memcpy(key->cert_ski, cert_ski, KW_SKI_LEN);
        key->has_cert_ski = 1;
    }
    int rc = add_ski(s, key->ski, key, &b->ski_cap);
    if (rc == 0 && has_cert_ski && memcmp(cert_ski, key->ski, KW_SKI_LEN) != 0)
        rc = add_ski(s, cert_ski, key, &b->ski_cap);
    if (rc == 0)
        rc = copy_names(key, names);
    if (rc == 0)
        rc = add_names(s, names, key, &b->sni_cap);
    kw_ks_names_free(names);
    s->n++; /* even on ENOMEM, so kw_keystore_unref frees it */
    if (rc != 0)
        return rc;
    char hex[2 * KW_DIGEST_LEN + 1];
    kw_hex_encode(key->digest, KW_DIGEST_LEN, hex);
    kw_info("loaded key %s (%s, %d bits%s%s) sha256:%s", key->name,
            key->type == KW_KS_KEY_RSA  ? "RSA"
            : key->type == KW_KS_KEY_EC ? "EC"
                                        : "Ed25519",
            key->bits, key->backend->note, key->chain_der ? ", with certificate chain" : "", hex);
    return 1;
}

/* What loading one key gives besides the key: its certificate's names and SKI extension. */
typedef struct loaded_s {
    kw_ks_names_t names;
    uint8_t cert_ski[KW_SKI_LEN];
    int has_cert_ski;
    char why[512];
} loaded_t;

/* After a loader returned rc for slot s->n: indexes the key, or logs why `what` was refused.
 * Returns 1 when it was added, 0 refused, <0 fatal. */
static int finish_load(build_t *b, int rc, const char *what, loaded_t *l)
{
    if (rc == KW_ENOMEM)
        return rc;
    if (rc != 0) {
        kw_error("key %s refused: %s", what, l->why);
        return 0;
    }
    return add_key(b, what, &l->names, l->cert_ski, l->has_cert_ski);
}

/* Loads key file `name` into slot s->n; returns like finish_load. */
static int load_one(build_t *b, const char *dir, const char *name)
{
    kw_ks_key_t *key = &b->s->keys[b->s->n];
    loaded_t l = {0};
    char what[1024];
    snprintf(what, sizeof(what), "%s/%s.key", dir, name);
    memset(key, 0, sizeof(*key));
    int rc = kw_ks_key_load(&b->loader, dir, name, key, &l.names, l.cert_ski, &l.has_cert_ski,
                            l.why, sizeof(l.why));
    return finish_load(b, rc, what, &l);
}

/* Adds the token key f (taken over) into slot s->n; returns like finish_load. */
static int load_token_key(build_t *b, kw_ks_p11_found_t *f)
{
    kw_ks_key_t *key = &b->s->keys[b->s->n];
    loaded_t l = {0};
    char what[300];
    snprintf(what, sizeof(what), "pkcs11 %s", f->name != NULL ? f->name : "?");
    memset(key, 0, sizeof(*key));
    int rc =
        kw_ks_key_from_token(f, key, &l.names, l.cert_ski, &l.has_cert_ski, l.why, sizeof(l.why));
    return finish_load(b, rc, what, &l);
}

static kw_keystore_t *store_new(size_t capacity)
{
    kw_keystore_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    size_t cap = capacity > 0 ? capacity : 1;
    s->keys = calloc(cap, sizeof(*s->keys));
    s->by_digest = calloc(cap, sizeof(*s->by_digest));
    if (s->keys == NULL || s->by_digest == NULL) {
        kw_keystore_unref(s);
        return NULL;
    }
    return s;
}

/* What kw_keystore_load_src gathers before it builds the store. */
typedef struct sources_s {
    char ***files; /* per directory: key file names */
    size_t *n_files;
    kw_ks_p11_keylist_t *tokens; /* per token: its usable keys */
    size_t total;
} sources_t;

static void sources_free(const kw_keystore_src_t *src, sources_t *g)
{
    for (size_t i = 0; g->files != NULL && i < src->n_dirs; i++)
        kw_strlist_free(&g->files[i], &g->n_files[i]);
    for (size_t i = 0; g->tokens != NULL && i < src->n_tokens; i++)
        kw_ks_p11_keylist_free(&g->tokens[i]);
    free(g->files);
    free(g->n_files);
    free(g->tokens);
}

/* Lists every directory and opens every token; any failure fails the load. */
static int gather(const kw_keystore_src_t *src, sources_t *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof(*g));
    g->files = calloc(src->n_dirs + 1, sizeof(*g->files));
    g->n_files = calloc(src->n_dirs + 1, sizeof(*g->n_files));
    g->tokens = calloc(src->n_tokens + 1, sizeof(*g->tokens));
    if (g->files == NULL || g->n_files == NULL || g->tokens == NULL) {
        snprintf(err, errlen, "out of memory loading keys");
        return KW_ENOMEM;
    }
    for (size_t i = 0; i < src->n_dirs; i++) {
        int rc = list_key_files(src->dirs[i], &g->files[i], &g->n_files[i], err, errlen);
        if (rc != 0)
            return rc;
        g->total += g->n_files[i];
    }
    for (size_t i = 0; i < src->n_tokens; i++) {
        if (src->p11 == NULL) {
            snprintf(err, errlen, "internal: PKCS#11 tokens without a module registry");
            return KW_EINVAL;
        }
        int rc = kw_ks_p11_load(src->p11, &src->tokens[i], &g->tokens[i], err, errlen);
        if (rc != 0)
            return rc;
        g->total += g->tokens[i].n;
    }
    return 0;
}

int kw_keystore_load_src(const kw_keystore_src_t *src, kw_keystore_t **out, size_t *skipped,
                         char *err, size_t errlen)
{
    sources_t g;
    build_t b = {0};
    int rc = gather(src, &g, err, errlen);
    kw_keystore_t *s = rc == 0 ? store_new(g.total) : NULL;
    size_t refused = 0;
    if (rc == 0 && (s == NULL || kw_ks_keyset_init(&b.seen, g.total) != 0))
        rc = KW_ENOMEM;
    b.s = s;
    for (size_t d = 0; rc == 0 && d < src->n_dirs; d++) {
        for (size_t i = 0; rc == 0 && i < g.n_files[d]; i++) {
            int added = load_one(&b, src->dirs[d], g.files[d][i]);
            rc = added < 0 ? added : 0;
            refused += added == 0;
        }
    }
    for (size_t t = 0; rc == 0 && t < src->n_tokens; t++) {
        for (size_t i = 0; rc == 0 && i < g.tokens[t].n; i++) {
            int added = load_token_key(&b, &g.tokens[t].v[i]);
            rc = added < 0 ? added : 0;
            refused += added == 0;
        }
    }
    sources_free(src, &g);
    kw_ks_keyset_free(&b.seen);
    kw_ks_loader_free(&b.loader);
    if (rc != 0) {
        kw_keystore_unref(s);
        if (rc == KW_ENOMEM)
            snprintf(err, errlen, "out of memory loading keys");
        return rc;
    }
    finish_indexes(s);
    if (skipped != NULL)
        *skipped = refused;
    *out = s;
    return 0;
}

int kw_keystore_load(const char *dir, kw_keystore_t **out, size_t *skipped, char *err,
                     size_t errlen)
{
    char *dirs[1] = {(char *)dir};
    kw_keystore_src_t src = {dirs, dir != NULL ? 1 : 0, NULL, 0, NULL};
    return kw_keystore_load_src(&src, out, skipped, err, errlen);
}

kw_keystore_t *kw_keystore_ref(kw_keystore_t *store)
{
    if (store != NULL)
        atomic_fetch_add_explicit(&store->refs, 1, memory_order_relaxed);
    return store;
}

void kw_keystore_unref(kw_keystore_t *store)
{
    if (store == NULL || atomic_fetch_sub_explicit(&store->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < store->n; i++) {
        kw_strlist_free(&store->keys[i].names, &store->keys[i].n_names);
        kw_ks_key_clear(&store->keys[i]);
    }
    for (size_t i = 0; i < store->n_sni; i++)
        free(store->by_sni[i].name);
    free(store->keys);
    free(store->by_digest);
    free(store->by_ski);
    free(store->by_sni);
    free(store);
}

size_t kw_keystore_count(const kw_keystore_t *store)
{
    return store->n;
}

const kw_ks_key_t *kw_keystore_get(const kw_keystore_t *store, size_t index)
{
    return index < store->n ? &store->keys[index] : NULL;
}

/* ---- lookups ---- */

static int cmp_digest_key(const void *k, const void *e)
{
    return memcmp(k, (*(const kw_ks_key_t *const *)e)->digest, KW_DIGEST_LEN);
}

static int cmp_ski_key(const void *k, const void *e)
{
    return memcmp(k, ((const ski_entry_t *)e)->ski, KW_SKI_LEN);
}

static int cmp_sni_key(const void *k, const void *e)
{
    return strcmp(k, ((const sni_entry_t *)e)->name);
}

const kw_ks_key_t *kw_keystore_find_digest(const kw_keystore_t *store, const uint8_t *digest)
{
    if (store->n == 0)
        return NULL;
    const kw_ks_key_t *const *hit =
        bsearch(digest, store->by_digest, store->n, sizeof(*store->by_digest), cmp_digest_key);
    return hit != NULL ? *hit : NULL;
}

const kw_ks_key_t *kw_keystore_find_ski(const kw_keystore_t *store, const uint8_t *ski)
{
    if (store->n_ski == 0)
        return NULL;
    const ski_entry_t *hit =
        bsearch(ski, store->by_ski, store->n_ski, sizeof(*store->by_ski), cmp_ski_key);
    return hit != NULL ? hit->key : NULL;
}

static const kw_ks_key_t *find_name(const kw_keystore_t *store, const char *name)
{
    if (store->n_sni == 0)
        return NULL;
    const sni_entry_t *hit =
        bsearch(name, store->by_sni, store->n_sni, sizeof(*store->by_sni), cmp_sni_key);
    return hit != NULL ? hit->key : NULL;
}

int kw_ks_sni_lower(const uint8_t *sni, size_t len, char name[256])
{
    if (len == 0 || len >= 256 - 2 || memchr(sni, 0, len) != NULL)
        return -1;
    for (size_t i = 0; i < len; i++)
        name[i] = (char)((sni[i] >= 'A' && sni[i] <= 'Z') ? sni[i] + 32 : sni[i]);
    name[len] = '\0';
    return 0;
}

const kw_ks_key_t *kw_keystore_find_sni(const kw_keystore_t *store, const uint8_t *sni, size_t len)
{
    char name[256];
    if (kw_ks_sni_lower(sni, len, name) != 0)
        return NULL;
    const kw_ks_key_t *key = find_name(store, name);
    const char *dot = strchr(name, '.');
    if (key != NULL || dot == NULL || dot == name)
        return key;
    /* "*.example.com" answers "www.example.com" (one label only). */
    char wild[sizeof(name) + 1];
    snprintf(wild, sizeof(wild), "*%s", dot);
    return find_name(store, wild);
}

const kw_ks_key_t *kw_keystore_find(const kw_keystore_t *store, const kw_msg_t *msg)
{
    const kw_ks_key_t *key = NULL;
    if (msg->digest.present && msg->digest.len == KW_DIGEST_LEN)
        key = kw_keystore_find_digest(store, msg->digest.ptr);
    if (key == NULL && msg->ski.present && msg->ski.len == KW_SKI_LEN)
        key = kw_keystore_find_ski(store, msg->ski.ptr);
    return key;
}

int kw_keystore_key_has_ski(const kw_ks_key_t *key, const uint8_t *ski)
{
    return memcmp(key->ski, ski, KW_SKI_LEN) == 0 ||
           (key->has_cert_ski && memcmp(key->cert_ski, ski, KW_SKI_LEN) == 0);
}

int kw_ks_sni_match(const char *pattern, const char *name)
{
    if (strcmp(pattern, name) == 0)
        return 1;
    const char *pdot = strchr(pattern, '.');
    const char *ndot = strchr(name, '.');
    if (pdot == NULL || ndot == NULL || strcmp(pdot, ndot) != 0)
        return 0;
    return (pattern[0] == '*' && pdot == pattern + 1) || (name[0] == '*' && ndot == name + 1);
}

int kw_keystore_key_covers_sni(const kw_ks_key_t *key, const uint8_t *sni, size_t len)
{
    char name[256];
    if (kw_ks_sni_lower(sni, len, name) != 0)
        return 0;
    for (size_t i = 0; i < key->n_names; i++)
        if (kw_ks_sni_match(key->names[i], name))
            return 1;
    return 0;
}
