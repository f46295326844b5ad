#!/bin/bash
# PKCS#11 token without raw RSA: SoftHSM2 behind tests/integration/p11shim/kw_p11_noraw.c, which
# hides CKM_RSA_X_509 (as an HSM whose policy forbids raw RSA). The key server must say so at load
# and fall back to CKM_RSA_PKCS for TLS RSA decryption (0xA0) with constant-time substitution of
# the key's synthetic pre-master secret: a good ciphertext gives the PMS, a wrong ClientHello
# version, bad padding or a wrong length give 48 other bytes, the same every time (never an error
# nor fresh random bytes, which would be oracles);
# PKCS#1 decryption (0x01) goes through the token's unpadding; raw decryption (0x08) is refused
# with an error reply and the server serves on. Then real TLS 1.2 RSA key exchange through
# openssl s_server with the keyward provider and a stub.
. "$(dirname "$0")/lib.sh"

SHIM=$KW_TESTS/kw_p11_noraw.so
[ -f "$SHIM" ] || fail "no $SHIM: build first"
make_pki
softhsm_token
export KW_P11_REAL_MODULE=$MODULE KW_P11_SHIM_LOG=$KW_TMP/shim.log
P11=(pkcs11-tool --module "$MODULE" --token-label keyward --login --pin 246810)
"${P11[@]}" --keypairgen --key-type rsa:2048 --id 01 --label site-rsa >/dev/null 2>&1 ||
    fail "RSA key generation on the token"
# (a sanitizer build's shim needs the sanitizer runtimes first in the uninstrumented pkcs11-tool)
shim_tool() { LD_PRELOAD="$(kw_provider_preload)" ASAN_OPTIONS=detect_leaks=0 pkcs11-tool "$@"; }
shim_tool --module "$SHIM" -M 2>/dev/null | grep -q "RSA-PKCS," || fail "the shim lists no RSA-PKCS"
if shim_tool --module "$SHIM" -M 2>/dev/null | grep -q "RSA-X-509"; then
    fail "the shim still lists RSA-X-509"
fi
pkcs11-tool --module "$MODULE" -M 2>/dev/null | grep -q "RSA-X-509" ||
    fail "SoftHSM2 itself lists no RSA-X-509 (the test would prove nothing)"
pass "the shim hides CKM_RSA_X_509 of a real SoftHSM2 token"

pkcs11-tool --module "$MODULE" --token-label keyward --read-object --type pubkey --id 01 \
    -o "$H/rsa.pub.der" >/dev/null 2>&1 || fail "export the public key"
openssl pkey -pubin -inform DER -in "$H/rsa.pub.der" -out "$H/rsa.pub.pem" || fail "public key"
printf '[s]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n' \
    >"$H/ext.cnf"
openssl x509 -new -subj "/CN=localhost" -force_pubkey "$H/rsa.pub.pem" -CA "$PKI/site-ca.crt" \
    -CAkey "$PKI/site-ca.key" -days 30 -extfile "$H/ext.cnf" -extensions s -out "$H/rsa.crt" \
    2>/dev/null || fail "certificate for the token key"

PORT=$(free_port)
start_keyserver_token ks "$PORT" "$SHIM" --workers 2 --enable-op rsa-decrypt \
    --enable-op rsa-decrypt-raw
grep -q "pkcs11 token 'keyward' .*: 1 usable key(s)" "$KW_TMP/ks.log" || fail "key not loaded"
grep -q "offers no raw RSA (CKM_RSA_X_509)" "$KW_TMP/ks.log" ||
    fail "no warning about the missing raw RSA"
pass "key server loads the key and warns that the token has no raw RSA"

rawc() {
    "$KW_TESTS/kw_rawclient" --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" --key-cert "$H/rsa.crt" "$@"
}
{ printf '\003\003'; head -c 46 /dev/urandom; } >"$H/pms"
openssl pkeyutl -encrypt -pubin -inkey "$H/rsa.pub.pem" -in "$H/pms" -out "$H/ct" || fail "encrypt"
rawc --op 0xa0 --payload-file "$H/ct" --extra-hex 0303 --out "$H/dec" >/dev/null ||
    fail "0xA0 through CKM_RSA_PKCS"
cmp -s "$H/pms" "$H/dec" || fail "0xA0 gave another PMS for a good ciphertext"
grep -q "CKM_RSA_PKCS decrypt" "$KW_P11_SHIM_LOG" || fail "the token was not asked to unpad"
pass "0xA0: a good ciphertext gives the PMS, unpadded by the token (CKM_RSA_PKCS)"

declare -A seen
check_synthetic() { # WHAT ARGS...: 48 bytes, not the PMS, never an error, the same when asked again
    local what=$1 h
    shift
    rawc --op 0xa0 "$@" --out "$H/dec" >/dev/null || fail "0xA0 ($what) answered an error"
    [ "$(wc -c <"$H/dec")" = 48 ] || fail "0xA0 ($what): not 48 bytes"
    cmp -s "$H/pms" "$H/dec" && fail "0xA0 ($what) returned the PMS"
    rawc --op 0xa0 "$@" --out "$H/dec2" >/dev/null || fail "0xA0 ($what) again answered an error"
    cmp -s "$H/dec" "$H/dec2" || fail "0xA0 ($what): another answer the second time (an oracle)"
    h=$(sha256sum "$H/dec" | cut -d' ' -f1)
    [ -z "${seen[$h]:-}" ] || fail "0xA0 ($what): the same synthetic bytes as another input"
    seen[$h]=1
}
check_synthetic "version mismatch" --payload-file "$H/ct" --extra-hex 0301
check_synthetic "another version mismatch" --payload-file "$H/ct" --extra-hex 0302
head -c 48 /dev/urandom >"$H/notpadded"
openssl pkeyutl -encrypt -pubin -inkey "$H/rsa.pub.pem" -pkeyopt rsa_padding_mode:none \
    -in <(printf '\000'; head -c 255 /dev/urandom) -out "$H/badpad" || fail "raw encrypt"
check_synthetic "bad padding" --payload-file "$H/badpad" --extra-hex 0303
check_synthetic "short ciphertext" --payload-file "$H/notpadded" --extra-hex 0303
pass "0xA0: version mismatch, bad padding and a short ciphertext give 48 synthetic bytes, the" \
    "same when asked again, different per input"

head -c 32 /dev/urandom >"$H/secret"
openssl pkeyutl -encrypt -pubin -inkey "$H/rsa.pub.pem" -in "$H/secret" -out "$H/ct1" ||
    fail "encrypt"
rawc --op 0x01 --payload-file "$H/ct1" --out "$H/pt" >/dev/null || fail "0x01 decrypt"
cmp -s "$H/secret" "$H/pt" || fail "0x01 decrypted another message"
rawc --op 0x08 --payload-file "$H/badpad" --expect-error 1 >/dev/null ||
    rawc --op 0x08 --payload-file "$H/badpad" --expect-error 8 >/dev/null ||
    fail "0x08 raw decrypt without raw RSA must be an error reply"
kill -0 "$KS_PID" 2>/dev/null || fail "key server died"
rawc --op 0xa0 --payload-file "$H/ct" --extra-hex 0303 --out "$H/dec" >/dev/null &&
    cmp -s "$H/pms" "$H/dec" || fail "0xA0 after the refused raw decrypt"
pass "0x01 decrypts through the token's unpadding; 0x08 is refused with an error; serving on"

if [ ! -f "$KW_PROVIDER" ]; then
    echo "skip: TLS handshake (provider $KW_PROVIDER not built)"
    exit 0
fi
write_openssl_conf "$KW_TMP/prov.cnf" "127.0.0.1:$PORT"
"$KW_BIN/keyward" stub --cert "$H/rsa.crt" --out "$H/rsa.stub" 2>/dev/null || fail "keyward stub"
SS_PORT=$(free_port)
start_bg sserver env OPENSSL_CONF="$KW_TMP/prov.cnf" LD_PRELOAD="$(kw_provider_preload)" \
    openssl s_server -accept "127.0.0.1:$SS_PORT" -cert "$H/rsa.crt" -key "$H/rsa.stub" -www -quiet
wait_port "$SS_PORT" 15 || fail "s_server did not start"
before=$(grep -c "CKM_RSA_PKCS decrypt" "$KW_P11_SHIM_LOG")
out=$(kw_https_get "$SS_PORT" -tls1_2 -cipher AES128-GCM-SHA256) || true
grep -q "Cipher is AES128-GCM-SHA256" <<<"$out" || fail "TLS 1.2 RSA key exchange: $out"
grep -q "HTTP/1.0 200 ok" <<<"$out" || fail "TLS 1.2 RSA key exchange: no data"
[ "$(grep -c "CKM_RSA_PKCS decrypt" "$KW_P11_SHIM_LOG")" -gt "$before" ] ||
    fail "the handshake's PMS was not unpadded by the token"
pass "TLS 1.2 RSA key exchange with the key on a token without raw RSA"
