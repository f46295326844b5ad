/*
 * Key files for the key store's unit tests (keystore_test.c, keystore_load_test.c): a key written
 * by a chosen PEM writer (PKCS#8, traditional, or a test's own), a text file, and the removal of
 * a test's directory. Each step asserts it worked.
 */
#ifndef KW_TEST_KEY_FILES_H
#define KW_TEST_KEY_FILES_H

#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

typedef void kf_write_fn(BIO *b, EVP_PKEY *pkey);

static inline void kf_pkcs8(BIO *b, EVP_PKEY *pkey)
{
    assert_int_equal(PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL), 1);
}

static inline void kf_traditional(BIO *b, EVP_PKEY *pkey)
{
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, pkey, NULL, NULL, 0, NULL, NULL), 1);
}

/* DIR/NAME.key, written by fn. */
static inline void kf_write_key(const char *dir, const char *name, EVP_PKEY *pkey, kf_write_fn *fn)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    BIO *b = BIO_new_file(path, "w");
    assert_non_null(b);
    fn(b, pkey);
    BIO_free(b);
}

/* DIR/FILE holding text. */
static inline void kf_write_text(const char *dir, const char *file, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static inline void kf_remove_dir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

#endif /* KW_TEST_KEY_FILES_H */
