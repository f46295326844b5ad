/*
 * keyward-proxy certificate distribution (--cert-from-keyserver): fetches a site's chain from the
 * key servers with KWP 0xA2 (by SNI name or key id; the reply is the DER certificates, leaf
 * first), checks that its leaf is for the name or key id asked for, and turns it into a site
 * whose key is the key server's key for that leaf. The refresher (proxy_refresh.c) calls this again
 * before the leaf expires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keyward/client.h"
#include "keyward/error.h"
#include "keyward/keyid.h"
#include "kw_chain.h"
#include "kw_hex.h"
#include "proxy_fetch.h"

int kw_proxy_fetch_client_new(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg, char *err,
                              size_t errlen)
{
    size_t len = 1;
    for (size_t i = 0; i < cfg->keyservers.n; i++) {
        len += strlen(cfg->keyservers.v[i]) + 1;
    }
    char *servers = calloc(1, len);
    if (servers == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    for (size_t i = 0, off = 0; i < cfg->keyservers.n; i++) {
        int n = snprintf(servers + off, len - off, "%s%s", i > 0 ? "," : "", cfg->keyservers.v[i]);
        off += n > 0 ? (size_t)n : 0; /* len has room for every name and comma */
    }
    kw_client_config_t cc = {
        .servers = servers,
        .cert_file = cfg->client_cert,
        .key_file = cfg->client_key,
        .ca_file = cfg->ca,
        .timeout_ms = cfg->keyserver_timeout_ms,
    };
    char msg[512];
    int rc = kw_client_new(&cc, &tls->client, msg, sizeof(msg));
    free(servers);
    if (rc != 0) {
        snprintf(err, errlen, "cannot set up the key-server client for certificates: %s", msg);
    }
    return rc;
}

static int call(kw_proxy_tls_t *tls, const char *name, uint8_t *buf, size_t cap, size_t *len,
                char *err, size_t errlen)
{
    uint8_t digest[KW_DIGEST_LEN];
    kw_msg_t msg;
    memset(&msg, 0, sizeof(msg));
    msg.opcode = KW_OP_GET_CERT_CHAIN;
    msg.has_opcode = 1;
    if (strncmp(name, "sha256:", 7) == 0) {
        if (kw_hex_decode(name + 7, digest, sizeof(digest)) != 0) {
            snprintf(err, errlen, "%s: not sha256:<64 hex digits>", name);
            return KW_ECONFIG;
        }
        msg.digest = kw_bytes(digest, sizeof(digest));
    } else {
        msg.sni = kw_bytes(name, strlen(name));
    }
    uint8_t remote = 0;
    int rc = kw_client_call(tls->client, &msg, buf, cap, len, &remote);
    if (rc == KW_EREMOTE) {
        snprintf(err, errlen, "no certificate chain for %s from the key servers: %s", name,
                 kw_remote_error_name(remote));
    } else if (rc != 0) {
        char last[256];
        kw_client_last_error(tls->client, last, sizeof(last));
        int said = last[0] != '\0';
        snprintf(err, errlen, "cannot fetch the certificate chain for %s: %s%s%s%s", name,
                 kw_strerror(rc), said ? " (" : "", last, said ? ")" : "");
    }
    return rc;
}

/* The fetched leaf must be what was asked for, whoever answered: for sha256:HEX a certificate of
 * that key, for a name a certificate valid for it as a client checks it (SAN DNS names and
 * wildcards; the CN only when there is no SAN). Returns 0, or KW_ECONFIG with err set. */
static int check_identity(const char *name, X509 *leaf, char *err, size_t errlen)
{
    char subject[256] = "?";
    X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof(subject));
    if (strncmp(name, "sha256:", 7) == 0) {
        uint8_t want[KW_DIGEST_LEN], got[KW_DIGEST_LEN], ski[KW_SKI_LEN];
        char hex[2 * KW_DIGEST_LEN + 1];
        EVP_PKEY *pub = X509_get0_pubkey(leaf);
        if (kw_hex_decode(name + 7, want, sizeof(want)) != 0 || pub == NULL ||
            kw_keyid_from_pkey(pub, got, ski) != 0) {
            snprintf(err, errlen, "cannot read the key of the certificate fetched for %s (%s)",
                     name, subject);
            return KW_ECONFIG;
        }
        if (CRYPTO_memcmp(want, got, sizeof(want)) != 0) {
            kw_hex_encode(got, sizeof(got), hex);
            snprintf(err, errlen,
                     "the certificate the key servers sent for %s (%s) is for another key, "
                     "sha256:%s: check the key server's NAME.crt files",
                     name, subject, hex);
            return KW_ECONFIG;
        }
        return 0;
    }
    /* A wildcard name asked for: the certificate must cover any host it stands for. */
    char host[300];
    snprintf(host, sizeof(host), "%s%s", strncmp(name, "*.", 2) == 0 ? "kw-any" : "",
             strncmp(name, "*.", 2) == 0 ? name + 1 : name);
    if (X509_check_host(leaf, host, strlen(host), 0, NULL) != 1) {
        snprintf(err, errlen,
                 "the certificate the key servers sent for %s (%s) is not valid for %s (clients "
                 "check its SAN DNS names, not its CN, when it has any): fetch it by one of its "
                 "names or by sha256:KEYID, or give the key server a certificate naming %s",
                 name, subject, name, name);
        return KW_ECONFIG;
    }
    return 0;
}

int kw_proxy_fetch_site(kw_proxy_tls_t *tls, const char *name, kw_proxy_site_t *site, char *err,
                        size_t errlen)
{
    size_t len = 0;
    uint8_t *buf = malloc(KW_MAX_BODY);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        return KW_ENOMEM;
    }
    int rc = call(tls, name, buf, KW_MAX_BODY, &len, err, errlen);
    STACK_OF(X509) *chain = rc == 0 ? kw_chain_parse(buf, len) : NULL;
    free(buf);
    if (rc != 0) {
        return rc;
    }
    if (chain == NULL) {
        snprintf(err, errlen, "the key server's chain for %s is not DER certificates", name);
        return KW_EFORMAT;
    }
    rc = check_identity(name, sk_X509_value(chain, 0), err, errlen);
    if (rc != 0) {
        sk_X509_pop_free(chain, X509_free);
        return rc;
    }
    site->fetch_name = name;
    site->fetched_at = time(NULL);
    rc = kw_proxy_site_from_chain(tls, chain, site, err, errlen);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

int kw_proxy_fetch_sites(kw_proxy_tls_t *tls, const kw_proxy_config_t *cfg, char *err,
                         size_t errlen)
{
    if (cfg->cert_from_keyserver.n == 0) {
        return 0;
    }
    int rc = kw_proxy_fetch_client_new(tls, cfg, err, errlen);
    for (size_t i = 0; rc == 0 && i < cfg->cert_from_keyserver.n; i++) {
        kw_proxy_site_t *site = &tls->sites[tls->nsites++];
        rc = kw_proxy_fetch_site(tls, cfg->cert_from_keyserver.v[i], site, err, errlen);
        tls->leaves[tls->nsites - 1] = site->leaf;
    }
    if (rc != 0) {
        kw_proxy_tls_cleanup(tls);
    }
    return rc;
}

int kw_proxy_site_expiring(const kw_proxy_site_t *site, time_t now)
{
    if (site->fetch_name == NULL || site->not_after <= site->not_before) {
        return 0;
    }
    time_t third = (site->not_after - site->not_before) / 3;
    return now >= site->not_after - third;
}

int kw_proxy_site_due(const kw_proxy_site_t *site, time_t now, unsigned recheck_s)
{
    if (site->fetch_name == NULL) {
        return 0;
    }
    return kw_proxy_site_expiring(site, now) ||
           (recheck_s != 0 && now - site->fetched_at >= (time_t)recheck_s);
}
