/*
 * kw_p11_noraw.so: a PKCS#11 module for tests that is a real token (SoftHSM2, loaded from
 * $KW_P11_REAL_MODULE) minus raw RSA. CKM_RSA_X_509 disappears from C_GetMechanismList, is
 * unknown to C_GetMechanismInfo and refused by C_DecryptInit, as on an HSM whose policy forbids
 * raw RSA; every other call goes straight to the real module. The key server's fallback for such
 * tokens (0xA0 through CKM_RSA_PKCS with random substitution) is tested through it
 * (test_keyserver_pkcs11_noraw.sh). Counts the CKM_RSA_PKCS decryptions it passes on in
 * $KW_P11_SHIM_LOG (one line each), so the test can see the fallback was used, and logs there
 * at C_Initialize (the token is opened before its PIN and keys are read) whether the process is
 * dumpable and its core size limits (test_hardening_hygiene_load.sh).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/prctl.h>
#include <sys/resource.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST shim;
static CK_FUNCTION_LIST_PTR real;

static CK_RV shim_get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                     CK_ULONG_PTR count)
{
    CK_ULONG n = 0;
    CK_RV rv = real->C_GetMechanismList(slot, NULL, &n);
    if (rv != CKR_OK)
        return rv;
    CK_MECHANISM_TYPE *all = calloc(n + 1, sizeof(*all));
    if (all == NULL)
        return CKR_HOST_MEMORY;
    rv = real->C_GetMechanismList(slot, all, &n);
    CK_ULONG kept = 0;
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++)
        if (all[i] != CKM_RSA_X_509)
            all[kept++] = all[i];
    if (rv == CKR_OK) {
        if (list != NULL && *count < kept)
            rv = CKR_BUFFER_TOO_SMALL;
        else if (list != NULL)
            memcpy(list, all, kept * sizeof(*all));
        *count = kept;
    }
    free(all);
    return rv;
}

static CK_RV shim_get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                     CK_MECHANISM_INFO_PTR info)
{
    if (type == CKM_RSA_X_509)
        return CKR_MECHANISM_INVALID;
    return real->C_GetMechanismInfo(slot, type, info);
}

static CK_RV shim_decrypt_init(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech,
                               CK_OBJECT_HANDLE key)
{
    if (mech != NULL && mech->mechanism == CKM_RSA_X_509)
        return CKR_MECHANISM_INVALID;
    if (mech != NULL && mech->mechanism == CKM_RSA_PKCS && getenv("KW_P11_SHIM_LOG") != NULL) {
        FILE *f = fopen(getenv("KW_P11_SHIM_LOG"), "a");
        if (f != NULL) {
            fputs("CKM_RSA_PKCS decrypt\n", f);
            fclose(f);
        }
    }
    return real->C_DecryptInit(session, mech, key);
}

static CK_RV shim_initialize(CK_VOID_PTR args)
{
    struct rlimit rl = {0, 0};
    FILE *f = getenv("KW_P11_SHIM_LOG") != NULL ? fopen(getenv("KW_P11_SHIM_LOG"), "a") : NULL;
    if (f != NULL && getrlimit(RLIMIT_CORE, &rl) == 0) {
        fprintf(f, "C_Initialize dumpable=%d core_soft=%llu core_hard=%llu\n",
                prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), (unsigned long long)rl.rlim_cur,
                (unsigned long long)rl.rlim_max);
    }
    if (f != NULL)
        fclose(f);
    return real->C_Initialize(args);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    if (real == NULL) {
        const char *path = getenv("KW_P11_REAL_MODULE");
        void *lib = path != NULL ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        CK_C_GetFunctionList get =
            lib != NULL ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
        if (get == NULL || get(&real) != CKR_OK || real == NULL) {
            fprintf(stderr, "kw_p11_noraw: cannot load KW_P11_REAL_MODULE=%s\n",
                    path != NULL ? path : "(unset)");
            real = NULL;
            return CKR_GENERAL_ERROR;
        }
        shim = *real;
        shim.C_GetMechanismList = shim_get_mechanism_list;
        shim.C_GetMechanismInfo = shim_get_mechanism_info;
        shim.C_DecryptInit = shim_decrypt_init;
        shim.C_Initialize = shim_initialize;
    }
    *out = &shim;
    return CKR_OK;
}
