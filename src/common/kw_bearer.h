/*
 * Bearer tokens of the metrics endpoints (--metrics-token-file, key server and keyward-proxy):
 * the token is the first line of a file read once at start (keep it root-only, 0600), kept only as
 * its SHA-256, and a request's "Authorization: Bearer TOKEN" is compared with it in constant time.
 * The token itself is never logged nor kept in memory.
 */
#ifndef KW_BEARER_H
#define KW_BEARER_H

#include <stddef.h>
#include <stdint.h>

#define KW_BEARER_MIN 16  /* characters of a token, at least ... */
#define KW_BEARER_MAX 512 /* ... and at most */

/* The 401 answer's body and its WWW-Authenticate header. */
#define KW_BEARER_401_BODY  "a bearer token is required (Authorization: Bearer TOKEN)\n"
#define KW_BEARER_CHALLENGE "Bearer realm=\"keyward\""

typedef struct kw_bearer_s {
    int set;          /* a token is required */
    uint8_t hash[32]; /* SHA-256 of the token */
} kw_bearer_t;

/* Reads the token from path (its first line, without surrounding blanks; 16 to 512 characters).
 * Returns 0, or KW_EIO / KW_ECONFIG with a sentence naming --metrics-token-file in err. */
int kw_bearer_load(kw_bearer_t *b, const char *path, char *err, size_t errlen);

/* 1 when no token is required or authorization (an Authorization header's value, may be NULL)
 * is "Bearer " and the token; else 0. No timing depends on the token's bytes or length. */
int kw_bearer_allows(const kw_bearer_t *b, const char *authorization);

#endif /* KW_BEARER_H */
