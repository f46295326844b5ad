#!/bin/bash
# The keyward provider through the EVP API, operation by operation (tools/kw_prov_check.c): keys
# from stubs and keyward: URIs match their certificates; RSA PKCS#1 and PSS, ECDSA and Ed25519
# signatures (EVP_DigestSign and EVP_PKEY_sign) and RSA decryption (PKCS#1, raw, TLS padding
# with implicit rejection) verify against the certificate's public key; unsupported parameters
# are refused; and inside an ASYNC job each remote operation pauses the job instead of blocking.
. "$(dirname "$0")/lib.sh"

provider_setup --enable-op rsa-decrypt --enable-op rsa-decrypt-raw # decrypt, rawdecrypt
export OPENSSL_CONF=$KW_TMP/prov.cnf
export LD_PRELOAD=${LD_PRELOAD:-$(kw_provider_preload)}
make_stubs rsa2048 rsa4096 ecdsa-p256 ecdsa-p384 ed25519

# kw_prov_check is an instrumented program: in sanitizer builds it also checks for leaks
check() { # what key cert ops...
    local what=$1
    shift
    ASAN_OPTIONS=detect_leaks=1 "$KW_TESTS/kw_prov_check" "$@" >"$KW_TMP/check.out" 2>&1 ||
        { cat "$KW_TMP/check.out" >&2; fail "$what"; }
    pass "$what: $(grep -c '^ok' "$KW_TMP/check.out") checks"
}

RSA_OPS=(sign:SHA256 sign:SHA384 sign:SHA512 sign:SHA1 pss:SHA256 pss:SHA384 pss:SHA512
    rawsign:SHA256 badpss decrypt rawdecrypt tlsdecrypt stream:SHA256 stream:SHA384 noexport)
check "RSA-2048 stub" "$KW_TMP/rsa2048.stub" "$PKI/certs/rsa2048.crt" "${RSA_OPS[@]}"
check "RSA-4096 stub" "$KW_TMP/rsa4096.stub" "$PKI/certs/rsa4096.crt" pss:SHA256 tlsdecrypt
check "RSA-2048 URI" "keyward:sha256=$(kw_keyid "$PKI/certs/rsa2048.crt")" \
    "$PKI/certs/rsa2048.crt" sign:SHA256 pss:SHA256 tlsdecrypt
SKI=$(openssl x509 -in "$PKI/certs/ecdsa-p256.crt" -noout -ext subjectKeyIdentifier |
    tail -1 | tr -d ' :')
check "ECDSA P-256 ski URI" "keyward:ski=$SKI" "$PKI/certs/ecdsa-p256.crt" sign:SHA256
check "ECDSA P-256 stub" "$KW_TMP/ecdsa-p256.stub" "$PKI/certs/ecdsa-p256.crt" \
    sign:SHA256 sign:SHA384 sign:SHA1 rawsign:SHA256 stream:SHA256 noexport
check "ECDSA P-384 stub" "$KW_TMP/ecdsa-p384.stub" "$PKI/certs/ecdsa-p384.crt" sign:SHA384
check "Ed25519 stub" "$KW_TMP/ed25519.stub" "$PKI/certs/ed25519.crt" ed25519 noexport
check "RSA async" --async "$KW_TMP/rsa2048.stub" "$PKI/certs/rsa2048.crt" \
    sign:SHA256 pss:SHA256 decrypt tlsdecrypt stream:SHA256
check "RSA-4096 async" --async "$KW_TMP/rsa4096.stub" "$PKI/certs/rsa4096.crt" \
    pss:SHA256 pss:SHA384 tlsdecrypt
# an RSA-4096 operation takes the key server milliseconds: those jobs must have paused, not
# blocked (a fast reply may legitimately arrive before the first pause)
pauses=$(sed -n 's/^ok: .* async (\([0-9]*\) pauses)$/\1/p' "$KW_TMP/check.out" | paste -sd+ | bc)
[ "${pauses:-0}" -gt 0 ] || fail "RSA-4096 ASYNC jobs never paused"
pass "RSA-4096 ASYNC jobs paused $pauses times while the key server worked"
check "ECDSA async" --async "$KW_TMP/ecdsa-p256.stub" "$PKI/certs/ecdsa-p256.crt" sign:SHA256 \
    stream:SHA256
check "Ed25519 async" --async "$KW_TMP/ed25519.stub" "$PKI/certs/ed25519.crt" ed25519

# certificate requests signed with remote keys (X509_REQ_sign needs the AlgorithmIdentifier)
for k in rsa2048 ecdsa-p256 ed25519; do
    openssl req -new -key "$KW_TMP/$k.stub" -subj "/CN=$k csr" -out "$KW_TMP/$k.csr" \
        2>"$KW_TMP/req.err" || { cat "$KW_TMP/req.err" >&2; fail "openssl req -key $k.stub"; }
    OPENSSL_CONF=/dev/null openssl req -in "$KW_TMP/$k.csr" -verify -noout 2>/dev/null ||
        fail "CSR signed with the $k stub does not verify"
    [ "$(OPENSSL_CONF=/dev/null openssl req -in "$KW_TMP/$k.csr" -noout -pubkey |
        openssl sha256 -r)" = "$(openssl x509 -in "$PKI/certs/$k.crt" -noout -pubkey |
        openssl sha256 -r)" ] || fail "CSR of $k carries another public key"
done
pass "openssl req signs CSRs with RSA, ECDSA and Ed25519 stubs; they verify"
openssl req -new -key "$KW_TMP/rsa2048.stub" -subj /CN=pss -sigopt rsa_padding_mode:pss \
    -out "$KW_TMP/pss.csr" 2>"$KW_TMP/req.err" && fail "PSS CSR accepted"
grep -q "no AlgorithmIdentifier" "$KW_TMP/req.err" || fail "PSS CSR: unclear error"
pass "RSA-PSS CSR refused with a reason"

# the check itself can fail: a stub against the wrong certificate
# openssl dgst -sign streams the file through EVP_DigestSignUpdate/Final (a BIO_f_md chain)
head -c 100000 /dev/urandom >"$KW_TMP/big"
for k in rsa2048 ecdsa-p256; do
    openssl dgst -sha256 -sign "$KW_TMP/$k.stub" -out "$KW_TMP/big.sig" "$KW_TMP/big" ||
        fail "openssl dgst -sign with the $k stub"
    openssl x509 -in "$PKI/certs/$k.crt" -noout -pubkey >"$KW_TMP/$k.pub"
    OPENSSL_CONF=/dev/null openssl dgst -sha256 -verify "$KW_TMP/$k.pub" \
        -signature "$KW_TMP/big.sig" "$KW_TMP/big" >/dev/null || fail "dgst signature ($k)"
done
pass "openssl dgst -sign streams 100 kB through RSA and ECDSA stubs; the signatures verify"

# no private key comes out of a stub, whatever the program asks for
for k in rsa2048 ecdsa-p256 ed25519; do
    openssl pkey -in "$KW_TMP/$k.stub" -out "$KW_TMP/$k.out" 2>"$KW_TMP/pkey.err" &&
        fail "openssl pkey wrote a private key from the $k stub"
    grep -qi "error" "$KW_TMP/pkey.err" || fail "openssl pkey ($k): no error message"
    if [ -s "$KW_TMP/$k.out" ] && grep -q "PRIVATE KEY" "$KW_TMP/$k.out"; then
        fail "openssl pkey left a private key file for $k"
    fi
    openssl pkey -in "$KW_TMP/$k.stub" -pubout -out "$KW_TMP/$k.stubpub" ||
        fail "openssl pkey -pubout from the $k stub"
    cmp -s "$KW_TMP/$k.stubpub" <(openssl x509 -in "$PKI/certs/$k.crt" -noout -pubkey) ||
        fail "the $k stub's public key is not the certificate's"
done
pass "openssl pkey refuses to write a private key from a stub; -pubout gives the certificate's key"

"$KW_TESTS/kw_prov_check" "$KW_TMP/rsa4096.stub" "$PKI/certs/rsa2048.crt" >/dev/null 2>&1 &&
    fail "a stub matched another certificate"
pass "a stub does not match another key's certificate"

# ordinary keys are untouched by the provider: generate, sign and verify with the default one
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$KW_TMP/plain.key" \
    2>/dev/null || fail "genpkey with the provider loaded"
echo data >"$KW_TMP/data"
openssl dgst -sha256 -sign "$KW_TMP/plain.key" -out "$KW_TMP/data.sig" "$KW_TMP/data" ||
    fail "signing with an ordinary key while the provider is loaded"
openssl pkey -in "$KW_TMP/plain.key" -pubout -out "$KW_TMP/plain.pub"
openssl dgst -sha256 -verify "$KW_TMP/plain.pub" -signature "$KW_TMP/data.sig" "$KW_TMP/data" \
    >/dev/null || fail "verify with an ordinary key"
pass "ordinary keys still generate, sign and verify with the provider loaded"

# the stub file carries the public key and the id only
openssl asn1parse -in "$KW_TMP/rsa2048.stub" -inform PEM >"$KW_TMP/stub.asn1" ||
    fail "stub is not DER inside PEM"
grep -q "keyward-key-stub" "$KW_TMP/stub.asn1" || fail "stub lacks its format string"
[ "$(wc -c <"$KW_TMP/rsa2048.stub")" -lt 700 ] || fail "RSA-2048 stub is larger than a public key"
pass "stub format: $(grep -c 'prim:' "$KW_TMP/stub.asn1") primitive fields, no private key"
