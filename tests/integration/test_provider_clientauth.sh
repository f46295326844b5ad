#!/bin/bash
# A TLS client authenticating with a key it does not hold: openssl s_client -cert C -key STUB
# (and -key keyward:sha256=...) through the keyward provider, against openssl s_server that
# requires and verifies client certificates (-Verify 1, keys on disk, no provider).
. "$(dirname "$0")/lib.sh"

provider_setup
make_stubs rsa2048 ecdsa-p256 ed25519

SS_PORT=$(free_port)
start_bg server env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$SS_PORT" \
    -cert "$PKI/keys/rsa2048.crt" -key "$PKI/keys/rsa2048.key" \
    -Verify 1 -verify_return_error -CAfile "$PKI/site-ca.crt" -www
wait_port "$SS_PORT" 15 || fail "s_server did not start"

# client NAME KEY WHAT s_client-args...: authenticate with certs/NAME.crt and KEY.
client() {
    local name=$1 key=$2 what=$3 out before
    shift 3
    before=$(grep -c "CN = $name.example" "$KW_TMP/server.log" || true)
    out=$(printf 'GET / HTTP/1.0\r\n\r\n' | env OPENSSL_CONF="$KW_TMP/prov.cnf" \
        LD_PRELOAD="$(kw_provider_preload)" timeout 10 openssl s_client \
        -connect "127.0.0.1:$SS_PORT" -CAfile "$PKI/site-ca.crt" -verify_return_error \
        -cert "$PKI/certs/$name.crt" -key "$key" -ign_eof "$@" 2>&1) || true
    echo "$out" >"$KW_TMP/client-$name.out"
    grep -q "HTTP/1.0 200 ok" <<<"$out" || fail "$what: no reply (client certificate refused?)"
    [ "$(grep -c "CN = $name.example" "$KW_TMP/server.log")" -gt "$before" ] ||
        fail "$what: server did not verify the $name client certificate"
    pass "$what"
}

client rsa2048 "$KW_TMP/rsa2048.stub" "RSA stub client cert, TLS 1.3 (RSA-PSS)" -tls1_3
client rsa2048 "$KW_TMP/rsa2048.stub" "RSA stub client cert, TLS 1.2" -tls1_2
client ecdsa-p256 "$KW_TMP/ecdsa-p256.stub" "ECDSA stub client cert, TLS 1.3" -tls1_3
client ecdsa-p256 "keyward:sha256=$(kw_keyid "$PKI/certs/ecdsa-p256.crt")" \
    "ECDSA URI client cert, TLS 1.2" -tls1_2
client ed25519 "$KW_TMP/ed25519.stub" "Ed25519 stub client cert, TLS 1.3" -tls1_3

# the wrong stub for the certificate: s_client refuses to load the pair
out=$(env OPENSSL_CONF="$KW_TMP/prov.cnf" LD_PRELOAD="$(kw_provider_preload)" timeout 10 \
    openssl s_client -connect "127.0.0.1:$SS_PORT" -cert "$PKI/certs/rsa2048.crt" \
    -key "$KW_TMP/ecdsa-p256.stub" </dev/null 2>&1) && fail "mismatching stub accepted"
grep -qi "does not match\|mismatch" <<<"$out" || fail "mismatch not explained: $out"
pass "client certificate with a mismatching stub refused at load"
