#!/bin/bash
# --cert-from-keyserver checks the identity of what it fetched: the leaf must be valid for the
# name asked for (as a client would check it: SAN DNS names, wildcards, CN only without SANs),
# and for sha256:HEX its key must be that key. A key server answering an SNI name with a
# certificate clients would reject (here: the name only in the CN, beside SAN names, which
# RFC 6125 clients ignore) stops the start with the name and the certificate's subject, instead
# of serving a certificate every client refuses.
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || { echo "skip: keyward.so not built"; exit 0; }

# cnonly.example: CN=cnonly.example but SAN DNS:elsewhere.example (the key server indexes both).
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=cnonly.example" \
    -keyout "$PKI/keys/cnonly.key" -out "$KW_TMP/cnonly.csr" 2>/dev/null || fail "req"
printf '%s\n' "subjectAltName = DNS:elsewhere.example" "extendedKeyUsage = serverAuth" \
    >"$KW_TMP/cnonly.ext"
openssl x509 -req -in "$KW_TMP/cnonly.csr" -CA "$PKI/site-ca.crt" -CAkey "$PKI/site-ca.key" \
    -CAcreateserial -CAserial "$KW_TMP/site.srl" -days 30 -extfile "$KW_TMP/cnonly.ext" \
    -out "$PKI/keys/cnonly.crt" 2>/dev/null || fail "x509"

KS=$(free_port)
start_keyserver ks "$KS"
# shellcheck disable=SC2207
KEYARGS=($(proxy_ks_args "$KS"))
BP=$(free_port)
start_backend backend "$BP"

# run_proxy NAME...: starts keyward-proxy with --cert-from-keyserver NAME each, expects it to
# stop at start; its output in $KW_TMP/refused.log.
refused() {
    local rc=0 args=() n
    for n in "$@"; do
        args+=(--cert-from-keyserver "$n")
    done
    timeout 30 "$KW_BIN/keyward-proxy" --listen "127.0.0.1:$(free_port)" \
        --backend "127.0.0.1:$BP" "${args[@]}" "${KEYARGS[@]}" >"$KW_TMP/refused.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] && [ "$rc" != 124 ] ||
        fail "keyward-proxy --cert-from-keyserver $* started (rc $rc): $(cat "$KW_TMP/refused.log")"
}

refused cnonly.example
grep -q "cnonly.example" "$KW_TMP/refused.log" && grep -q "not valid for" "$KW_TMP/refused.log" ||
    fail "the refusal does not say the certificate is not valid for the name: $(cat "$KW_TMP/refused.log")"
pass "a fetched certificate not valid for its name is refused: '$(grep "not valid" "$KW_TMP/refused.log")'"

# What passes: the SAN name of the same certificate, an exact name, a key id.
P256=$(kw_keyid "$PKI/keys/ecdsa-p256.crt")
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" --cert-from-keyserver elsewhere.example \
    --cert-from-keyserver rsa2048.example --cert-from-keyserver "sha256:$P256" "${KEYARGS[@]}"
OPENSSL_CONF=/dev/null curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
    --resolve "elsewhere.example:$PP:127.0.0.1" "https://elsewhere.example:$PP/" >"$KW_TMP/c.out" 2>&1 ||
    fail "curl elsewhere.example: $(cat "$KW_TMP/c.out")"
pass "the same certificate fetched by a name it is valid for is served"
