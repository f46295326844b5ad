/*
 * A PKCS#11 token: find its slot from the URI attributes, log in with the PIN from a file (the PIN
 * is cleansed right after C_Login), probe the mechanisms, and pool sessions for the worker threads.
 * One session stays open for the token's lifetime so the login lasts (Cryptoki logs a token out
 * when an application's last session on it closes). Sessions are closed one by one, never with
 * C_CloseAllSessions, so the token object of a reloaded store never disturbs the old one's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "keystore/pkcs11/pkcs11_internal.h"

#define PIN_MAX 256

/* Copies a blank-padded Cryptoki field into out (NUL-terminated, trailing blanks removed). */
static void field_str(const unsigned char *field, size_t len, char *out)
{
    memcpy(out, field, len);
    while (len > 0 && (out[len - 1] == ' ' || out[len - 1] == '\0'))
        len--;
    out[len] = '\0';
}

static int field_matches(const unsigned char *field, size_t len, const char *want)
{
    char buf[65];
    if (want == NULL)
        return 1;
    field_str(field, len < 64 ? len : 64, buf);
    return strcmp(buf, want) == 0;
}

static int token_matches(CK_SLOT_ID slot, const CK_TOKEN_INFO *ti, const kw_ks_p11_uri_t *uri,
                         const char *label)
{
    if (uri->has_slot_id && uri->slot_id != slot)
        return 0;
    return field_matches(ti->label, sizeof(ti->label), label) &&
           field_matches(ti->serialNumber, sizeof(ti->serialNumber), uri->serial) &&
           field_matches(ti->manufacturerID, sizeof(ti->manufacturerID), uri->manufacturer) &&
           field_matches(ti->model, sizeof(ti->model), uri->model);
}

/* Finds the slot of the token named by uri / label. */
static int find_slot(kw_ks_p11_token_t *t, const kw_ks_p11_uri_t *uri, const char *label, char *err,
                     size_t errlen)
{
    CK_ULONG n = 0;
    CK_RV rv = t->f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK || n == 0 || n > 4096) {
        snprintf(err, errlen, "pkcs11 module %s: no token present (%s)", t->mod->path,
                 kw_ks_p11_rv_name(rv));
        return KW_ENOKEY;
    }
    CK_SLOT_ID *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return KW_ENOMEM;
    rv = t->f->C_GetSlotList(CK_TRUE, slots, &n);
    int found = 0;
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
        CK_TOKEN_INFO ti;
        if (t->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
            !token_matches(slots[i], &ti, uri, label))
            continue;
        if (found++ == 0) {
            t->slot = slots[i];
            field_str(ti.label, sizeof(ti.label), t->label);
        }
    }
    free(slots);
    if (found == 0) {
        snprintf(err, errlen,
                 "pkcs11 module %s: no token labelled '%s' (check --pkcs11-token; "
                 "`pkcs11-tool --module %s -L` lists the tokens)",
                 t->mod->path, label != NULL ? label : "(any)", t->mod->path);
        return KW_ENOKEY;
    }
    if (found > 1)
        kw_warn("pkcs11: %d tokens match '%s'; using slot %lu (add serial= to the URI to choose)",
                found, t->label, (unsigned long)t->slot);
    return 0;
}

/* Reads the PIN (first line of path) into pin. Returns its length or a negative KW_E*. */
static int read_pin(const char *path, char *pin, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read the PIN file %s (check --pkcs11-pin-file)", path);
        return KW_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077) != 0)
        kw_warn("PIN file %s is readable by group or others; chmod 600 it", path);
    size_t len = fread(pin, 1, PIN_MAX, f);
    fclose(f);
    char *nl = memchr(pin, '\n', len);
    if (nl != NULL)
        len = (size_t)(nl - pin);
    if (len > 0 && pin[len - 1] == '\r')
        len--;
    if (len == 0 || len >= PIN_MAX) {
        OPENSSL_cleanse(pin, PIN_MAX);
        snprintf(err, errlen, "PIN file %s: expected the PIN on its first line", path);
        return KW_ECONFIG;
    }
    pin[len] = '\0';
    return (int)len;
}

static int login(kw_ks_p11_token_t *t, const char *pin_file, const char *pin_value, char *err,
                 size_t errlen)
{
    char pin[PIN_MAX + 1];
    int len;
    if (pin_file == NULL && pin_value == NULL) {
        snprintf(err, errlen,
                 "pkcs11 token '%s': no PIN given (--pkcs11-pin-file, pin_file, or "
                 "pin-source in the URI)",
                 t->label);
        return KW_ECONFIG;
    }
    if (pin_file != NULL) {
        len = read_pin(pin_file, pin, err, errlen);
        if (len < 0)
            return len;
    } else {
        len = (int)strlen(pin_value);
        if (len == 0 || len >= PIN_MAX) {
            snprintf(err, errlen, "pkcs11: pin-value is empty or too long");
            return KW_ECONFIG;
        }
        memcpy(pin, pin_value, (size_t)len + 1);
    }
    CK_RV rv = t->f->C_Login(t->login, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)len);
    OPENSSL_cleanse(pin, sizeof(pin));
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
        return 0;
    snprintf(err, errlen, "pkcs11 token '%s': login failed: %s%s", t->label, kw_ks_p11_rv_name(rv),
             rv == CKR_PIN_INCORRECT ? " (check the PIN file)" : "");
    return KW_EDENIED;
}

static void probe_mechanisms(kw_ks_p11_token_t *t)
{
    static const struct {
        CK_MECHANISM_TYPE mech;
        unsigned flag;
    } known[] = {
        {CKM_RSA_PKCS, KW_P11_MECH_RSA_PKCS},    {CKM_RSA_X_509, KW_P11_MECH_RSA_X509},
        {CKM_RSA_PKCS_PSS, KW_P11_MECH_RSA_PSS}, {CKM_ECDSA, KW_P11_MECH_ECDSA},
        {CKM_EDDSA, KW_P11_MECH_EDDSA},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        CK_MECHANISM_INFO info;
        if (t->f->C_GetMechanismInfo(t->slot, known[i].mech, &info) == CKR_OK)
            t->mechs |= known[i].flag;
    }
}

int kw_ks_p11_token_open(kw_ks_p11_module_t *mod, const kw_ks_p11_uri_t *uri, const char *pin_file,
                         kw_ks_p11_token_t **out, char *err, size_t errlen)
{
    kw_ks_p11_token_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return KW_ENOMEM;
    atomic_init(&t->refs, 1);
    atomic_fetch_add_explicit(&mod->refs, 1, memory_order_relaxed);
    t->mod = mod;
    t->f = mod->f;
    t->login = CK_INVALID_HANDLE;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        kw_ks_p11_module_unref(mod);
        free(t);
        return KW_ENOMEM;
    }
    int rc = find_slot(t, uri, uri->token, err, errlen);
    if (rc == 0) {
        CK_RV rv = t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, &t->login);
        if (rv != CKR_OK) {
            t->login = CK_INVALID_HANDLE;
            snprintf(err, errlen, "pkcs11 token '%s': cannot open a session: %s", t->label,
                     kw_ks_p11_rv_name(rv));
            rc = KW_EIO;
        }
    }
    if (rc == 0)
        rc = login(t, pin_file, uri->pin_value, err, errlen);
    if (rc != 0) {
        kw_ks_p11_token_unref(t);
        return rc;
    }
    probe_mechanisms(t);
    *out = t;
    return 0;
}

kw_ks_p11_token_t *kw_ks_p11_token_ref(kw_ks_p11_token_t *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void kw_ks_p11_token_unref(kw_ks_p11_token_t *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < t->n_idle; i++)
        t->f->C_CloseSession(t->idle[i]);
    if (t->login != CK_INVALID_HANDLE)
        t->f->C_CloseSession(t->login);
    pthread_mutex_destroy(&t->lock);
    kw_ks_p11_module_unref(t->mod);
    free(t);
}

CK_RV kw_ks_p11_session_get(kw_ks_p11_token_t *t, CK_SESSION_HANDLE *out)
{
    pthread_mutex_lock(&t->lock);
    if (t->n_idle > 0) {
        *out = t->idle[--t->n_idle];
        pthread_mutex_unlock(&t->lock);
        return CKR_OK;
    }
    pthread_mutex_unlock(&t->lock);
    return t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL, NULL, out);
}

void kw_ks_p11_session_put(kw_ks_p11_token_t *t, CK_SESSION_HANDLE s, int broken)
{
    if (!broken) {
        pthread_mutex_lock(&t->lock);
        if (t->n_idle < KW_P11_POOL_MAX) {
            t->idle[t->n_idle++] = s;
            s = CK_INVALID_HANDLE;
        }
        pthread_mutex_unlock(&t->lock);
    }
    if (s != CK_INVALID_HANDLE)
        t->f->C_CloseSession(s);
}

int kw_ks_p11_rv_breaks_session(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_ERROR ||
           rv == CKR_OPERATION_ACTIVE || rv == CKR_GENERAL_ERROR;
}
