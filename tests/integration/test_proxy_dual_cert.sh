#!/bin/bash
# One name, two certificates: keyward-proxy gets an RSA and an ECDSA certificate for the same
# names (dual.example), each key only on the key server. The second --cert joins the first one's
# TLS context, and the client's signature algorithms choose: a client that offers only RSA-PSS
# (TLS 1.3) or ECDHE-RSA (TLS 1.2) gets the RSA certificate, one that offers only ECDSA gets the
# ECDSA one, and curl gets a page either way. Two certificates of the same key type for the same
# names are not merged (the first is served, as before).
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || {
    echo "skip: the keyward provider is not built"
    exit 0
}

# dual_cert KEY OUT: a certificate for dual.example on the public key of the site key KEY.
dual_cert() {
    openssl x509 -in "$PKI/keys/$1.crt" -noout -pubkey >"$KW_TMP/$1.pub"
    openssl x509 -new -subj "/CN=dual.example" -force_pubkey "$KW_TMP/$1.pub" \
        -CA "$PKI/site-ca.crt" -CAkey "$PKI/site-ca.key" -days 30 -out "$2" \
        -extfile <(printf 'subjectAltName=DNS:dual.example,DNS:www.dual.example\nextendedKeyUsage=serverAuth\n') \
        2>/dev/null || fail "certificate for dual.example on the $1 key"
}
dual_cert rsa2048 "$KW_TMP/dual-rsa.crt"
dual_cert ecdsa-p256 "$KW_TMP/dual-ec.crt"
dual_cert rsa3072 "$KW_TMP/dual-rsa2.crt"

KS=$(free_port)
start_keyserver ks "$KS"
# shellcheck disable=SC2207
KEYARGS=($(proxy_ks_args "$KS"))
BP=$(free_port)
start_backend backend "$BP"
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" --cert "$PKI/certs/ecdsa-p256.crt" \
    --cert "$KW_TMP/dual-rsa.crt" --cert "$KW_TMP/dual-ec.crt" --cert "$KW_TMP/dual-rsa2.crt" \
    "${KEYARGS[@]}" --threads 1
grep -q "certificate 2 also has $KW_TMP/dual-ec.crt" "$KW_TMP/proxy.log" ||
    fail "the ECDSA certificate did not join the RSA one: $(grep certificate "$KW_TMP/proxy.log")"
grep -q "certificate 3: .*dual.example" "$KW_TMP/proxy.log" ||
    fail "the second RSA certificate for the same names should stay a site of its own"
pass "the ECDSA certificate for dual.example joins the RSA one; a second RSA one does not"

# served SIGALG-ARGS...: the key type of the certificate the proxy serves for dual.example
served() {
    local out
    out=$(printf 'GET / HTTP/1.0\r\n\r\n' | OPENSSL_CONF=/dev/null timeout 10 openssl s_client \
        -connect "127.0.0.1:$PP" -servername dual.example -CAfile "$PKI/site-ca.crt" \
        -verify_return_error -ign_eof "$@" 2>&1) || true
    grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "s_client $*: not verified: $out"
    grep -q "backend" <<<"$out" || fail "s_client $*: no reply from the backend"
    sed -n 's/^Server public key is \([0-9]*\) bit$/\1/p' <<<"$out"
}
[ "$(served -tls1_3 -sigalgs rsa_pss_rsae_sha256)" = 2048 ] || fail "TLS 1.3 RSA-PSS client"
[ "$(served -tls1_3 -sigalgs ecdsa_secp256r1_sha256)" = 256 ] || fail "TLS 1.3 ECDSA client"
[ "$(served -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256)" = 2048 ] || fail "TLS 1.2 ECDHE-RSA"
[ "$(served -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256)" = 256 ] || fail "TLS 1.2 ECDHE-ECDSA"
[ "$(served -tls1_2 -cipher AES128-GCM-SHA256)" = 2048 ] || fail "TLS 1.2 RSA key exchange"
pass "the client's signature algorithms choose: RSA-only clients get RSA-2048, ECDSA-only P-256 (TLS 1.2 and 1.3)"

for v in 1.2 1.3; do
    out=$(OPENSSL_CONF=/dev/null curl -sS --max-time 30 --cacert "$PKI/site-ca.crt" --tlsv$v \
        --tls-max $v --resolve "dual.example:$PP:127.0.0.1" "https://dual.example:$PP/" 2>&1) ||
        fail "curl TLS $v: $out"
    grep -q "backend" <<<"$out" || fail "curl TLS $v: unexpected reply: $out"
done
pass "curl fetches through the dual-certificate site over TLS 1.2 and 1.3"
