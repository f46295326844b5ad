/*
 * PKCS#11 modules: dlopen a module, get its function list, C_Initialize it once with OS locking
 * (worker threads call it concurrently), and keep it in the context's registry so a reload reuses
 * the initialised module instead of initialising it twice (which Cryptoki forbids). The last
 * reference finalises and unloads it.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/error.h"
#include "kw_log.h"
#include "keystore/pkcs11/pkcs11_internal.h"

int kw_ks_p11_ctx_new(kw_ks_p11_ctx_t **out)
{
    kw_ks_p11_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return KW_ENOMEM;
    if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
        free(ctx);
        return KW_ENOMEM;
    }
    *out = ctx;
    return 0;
}

void kw_ks_p11_ctx_free(kw_ks_p11_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    kw_ks_p11_module_t *m = ctx->modules;
    while (m != NULL) {
        kw_ks_p11_module_t *next = m->next;
        m->next = NULL;
        kw_ks_p11_module_unref(m);
        m = next;
    }
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static int module_init(kw_ks_p11_module_t *m, char *err, size_t errlen)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = m->f->C_Initialize(&args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        kw_warn("pkcs11 module %s was already initialised in this process", m->path);
        return 0;
    }
    if (rv != CKR_OK) {
        snprintf(err, errlen, "pkcs11 module %s: C_Initialize failed: %s", m->path,
                 kw_ks_p11_rv_name(rv));
        return KW_EIO;
    }
    m->finalize = 1;
    return 0;
}

static int module_load(const char *path, kw_ks_p11_module_t **out, char *err, size_t errlen)
{
    kw_ks_p11_module_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return KW_ENOMEM;
    atomic_init(&m->refs, 1);
    m->path = strdup(path);
    if (m->path == NULL) {
        free(m);
        return KW_ENOMEM;
    }
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        snprintf(err, errlen, "cannot load pkcs11 module %s: %s (check --pkcs11-module)", path,
                 dlerror());
        kw_ks_p11_module_unref(m);
        return KW_EIO;
    }
    CK_C_GetFunctionList get = NULL;
    *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL || get(&m->f) != CKR_OK || m->f == NULL) {
        snprintf(err, errlen, "%s is not a PKCS#11 module (no usable C_GetFunctionList)", path);
        m->f = NULL;
        kw_ks_p11_module_unref(m);
        return KW_EIO;
    }
    int rc = module_init(m, err, errlen);
    if (rc != 0) {
        kw_ks_p11_module_unref(m);
        return rc;
    }
    *out = m;
    return 0;
}

int kw_ks_p11_module_get(kw_ks_p11_ctx_t *ctx, const char *path, kw_ks_p11_module_t **out,
                         char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&ctx->lock);
    kw_ks_p11_module_t *m = ctx->modules;
    while (m != NULL && strcmp(m->path, path) != 0)
        m = m->next;
    if (m == NULL) {
        rc = module_load(path, &m, err, errlen);
        if (rc == 0) {
            m->next = ctx->modules;
            ctx->modules = m; /* the registry's reference */
        }
    }
    if (rc == 0) {
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
        *out = m;
    }
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

void kw_ks_p11_module_unref(kw_ks_p11_module_t *m)
{
    if (m == NULL || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (m->finalize && m->f != NULL)
        m->f->C_Finalize(NULL);
    if (m->dl != NULL)
        dlclose(m->dl);
    free(m->path);
    free(m);
}

const char *kw_ks_p11_rv_name(CK_RV rv)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
        {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
        {CKR_DATA_INVALID, "CKR_DATA_INVALID"},
        {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
        {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
        {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
        {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
        {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
        {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
        {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
        {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
        {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
        {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
        {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
        {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
        {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
        {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
        {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
        {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].rv == rv)
            return names[i].name;
    }
    return "CKR_(other)";
}
