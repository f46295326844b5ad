#!/bin/bash
# openssl s_server holding only certificates, with its keys on a key server through the keyward
# provider (-key keyward:sha256=... and -key STUB, blocking and -async), against openssl
# s_client: TLS 1.2 RSA key exchange, ECDHE-RSA, ECDHE-ECDSA, and TLS 1.3 with RSA-PSS, ECDSA
# P-256 and Ed25519 certificates. Each connection must verify, handshake and exchange data.
. "$(dirname "$0")/lib.sh"

provider_setup

declare -A KEYID
for k in rsa2048 ecdsa-p256 ed25519; do
    "$KW_BIN/keyward" stub --cert "$PKI/certs/$k.crt" --out "$KW_TMP/$k.stub" 2>/dev/null ||
        fail "keyward stub --cert $k.crt"
    KEYID[$k]=$(kw_keyid "$PKI/certs/$k.crt")
done
grep -q -- "-----BEGIN KEYWARD KEY-----" "$KW_TMP/rsa2048.stub" || fail "stub has no PEM label"
if grep -q "PRIVATE" "$KW_TMP/rsa2048.stub"; then fail "stub mentions a private key"; fi
pass "keyward stub wrote stubs for rsa2048, ecdsa-p256, ed25519"

# serve NAME CERT KEY [s_server args...]: s_server -www with the provider; sets SS_PORT.
serve() {
    local name=$1 cert=$2 key=$3
    shift 3
    SS_PORT=$(free_port)
    start_bg "$name" env OPENSSL_CONF="$KW_TMP/prov.cnf" LD_PRELOAD="$PRELOAD" \
        openssl s_server -accept "127.0.0.1:$SS_PORT" -cert "$PKI/certs/$cert.crt" -key "$key" \
        -www -quiet "$@"
    SS_PID=$LAST_PID
    wait_port "$SS_PORT" 15 || fail "s_server $name did not start"
}

# also_ok: like expect_ok, but only for stubs (URI keys run the main cases, keeping the test short)
also_ok() {
    if [ "$keyform" = stub ]; then expect_ok "$@"; fi
}

# expect_ok WHAT PATTERN [s_client args...]: a verified handshake with data, and PATTERN seen.
expect_ok() {
    local what=$1 pattern=$2 out
    shift 2
    out=$(kw_https_get "$SS_PORT" "$@") || true
    echo "$out" >"$KW_TMP/client.out"
    grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "$what: certificate not verified"
    grep -q "HTTP/1.0 200 ok" <<<"$out" || fail "$what: no HTTP reply over TLS"
    grep -Eiq "$pattern" <<<"$out" || fail "$what: expected /$pattern/ in s_client output"
    pass "$what"
}

for mode in sync async; do
    extra=()
    [ "$mode" = async ] && extra=(-async)
    for keyform in uri stub; do
        for k in rsa2048 ecdsa-p256 ed25519; do
            if [ "$keyform" = uri ]; then
                key="keyward:sha256=${KEYID[$k]}"
            else
                key="$KW_TMP/$k.stub"
            fi
            serve "ss-$k-$keyform-$mode" "$k" "$key" "${extra[@]}"
            tag="$k $keyform $mode"
            case $k in
            rsa2048)
                expect_ok "$tag: TLS 1.2 RSA key exchange" "Cipher is AES128-GCM-SHA256" \
                    -tls1_2 -cipher AES128-GCM-SHA256
                also_ok "$tag: TLS 1.2 ECDHE-RSA" "Cipher is ECDHE-RSA-AES128-GCM-SHA256" \
                    -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
                expect_ok "$tag: TLS 1.2 ECDHE-RSA PKCS#1" "Peer signature type: RSA$" \
                    -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -sigalgs RSA+SHA256
                expect_ok "$tag: TLS 1.3 RSA-PSS" "Peer signature type: RSA-PSS" -tls1_3
                ;;
            ecdsa-p256)
                expect_ok "$tag: TLS 1.2 ECDHE-ECDSA" "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" \
                    -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
                expect_ok "$tag: TLS 1.3 ECDSA P-256" "Peer signature type: ECDSA" -tls1_3
                ;;
            ed25519)
                expect_ok "$tag: TLS 1.3 Ed25519" "Peer signature type: Ed25519" -tls1_3
                also_ok "$tag: TLS 1.2 Ed25519" "Peer signature type: Ed25519" \
                    -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
                ;;
            esac
            kill "$SS_PID" 2>/dev/null || true
            wait "$SS_PID" 2>/dev/null || true
        done
    done
done
