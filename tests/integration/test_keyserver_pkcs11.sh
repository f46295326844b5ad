#!/bin/bash
# PKCS#11 end to end with SoftHSM2: a fresh token in a temporary SOFTHSM2_CONF, RSA-2048, ECDSA
# P-256 and Ed25519 keys generated ON the token (they never exist as files), certificates for them
# issued by the site CA from the public keys exported from the token (the RSA one also written to
# the token), a key server started with the token and no key files, then: signatures and
# decryption through the CLI verified with openssl, the certificate chain served from the token,
# the same through a YAML config with a pkcs11: URI, a key deleted from the token answering an
# error (and the server serving on), and real TLS handshakes (openssl s_server with the keyward
# provider, s_client) when the provider is built.
. "$(dirname "$0")/lib.sh"

make_pki
softhsm_token
P11=(pkcs11-tool --module "$MODULE" --token-label keyward --login --pin 246810)
"${P11[@]}" --keypairgen --key-type rsa:2048 --id 01 --label site-rsa >/dev/null 2>&1 ||
    fail "RSA key generation on the token"
"${P11[@]}" --keypairgen --key-type EC:prime256v1 --id 02 --label site-ec >/dev/null 2>&1 ||
    fail "EC key generation on the token"
"${P11[@]}" --keypairgen --key-type rsa:2048 --id 04 --label doomed >/dev/null 2>&1 ||
    fail "second RSA key generation on the token"
HAVE_ED=1
"${P11[@]}" --keypairgen --key-type EC:edwards25519 --id 03 --label site-ed >/dev/null 2>&1 ||
    HAVE_ED=0
pass "token initialised, keys generated on it (Ed25519: $HAVE_ED)"

ext=$H/ext.cnf
printf '[site]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:%s\nsubjectKeyIdentifier=hash\n' \
    '${ENV::KW_SITE_NAME}' >"$ext"
# cert NAME ID: public key exported from the token, certificate signed by the site CA.
cert() {
    local name=$1 id=$2
    pkcs11-tool --module "$MODULE" --token-label keyward --read-object --type pubkey --id "$id" \
        -o "$H/$name.pub.raw" >/dev/null 2>&1 || fail "export public key $id"
    openssl pkey -pubin -in "$H/$name.pub.raw" -out "$H/$name.pub.pem" 2>/dev/null ||
        openssl pkey -pubin -inform DER -in "$H/$name.pub.raw" -out "$H/$name.pub.pem" ||
        fail "public key $id is not readable"
    KW_SITE_NAME=$name.example openssl x509 -new -subj "/O=keyward test/CN=$name.example" \
        -force_pubkey "$H/$name.pub.pem" -CA "$PKI/site-ca.crt" -CAkey "$PKI/site-ca.key" \
        -days 30 -extfile "$ext" -extensions site -out "$H/$name.crt" 2>/dev/null ||
        fail "certificate for $name"
}
cert rsa 01
cert ec 02
cert doomed 04
[ "$HAVE_ED" = 1 ] && cert ed 03
openssl x509 -in "$H/rsa.crt" -outform DER -out "$H/rsa.crt.der"
"${P11[@]}" --write-object "$H/rsa.crt.der" --type cert --id 01 --label site-rsa >/dev/null 2>&1 ||
    fail "writing the RSA certificate to the token"
pass "certificates issued for the token's public keys"
if ls "$H"/*.key >/dev/null 2>&1; then fail "a private key file exists"; fi

KS_PORT=$(free_port)
start_keyserver_token ks "$KS_PORT" "$MODULE" --workers 2 --enable-op rsa-decrypt
want=$((3 + HAVE_ED))
grep -q "pkcs11 token 'keyward' .*: $want usable key(s)" "$KW_TMP/ks.log" ||
    fail "expected $want keys from the token"
pass "key server serves $want keys from the token and none from files"

printf 'signed by a key that lives only in SoftHSM\n' >"$H/msg"
sign() { # ALG NAME [openssl dgst args...]
    local alg=$1 name=$2
    shift 2
    rm -f "$H/sig"
    kw_cli "$KS_PORT" sign --alg "$alg" --in "$H/msg" --out "$H/sig" --key-cert "$H/$name.crt" \
        >/dev/null 2>"$H/cli.err" || fail "sign $alg: $(cat "$H/cli.err")"
    if [ "$alg" = ed25519 ]; then
        openssl pkeyutl -verify -pubin -inkey "$H/$name.pub.pem" -rawin -in "$H/msg" \
            -sigfile "$H/sig" >/dev/null || fail "openssl rejects the $alg signature"
    else
        openssl dgst "$@" -verify "$H/$name.pub.pem" -signature "$H/sig" "$H/msg" >/dev/null ||
            fail "openssl rejects the $alg signature"
    fi
    pass "sign $alg with the token's $name key, verified by openssl"
}
sign rsa-pkcs1-sha256 rsa -sha256
sign rsa-pkcs1-sha1 rsa -sha1
sign rsa-pkcs1-sha512 rsa -sha512
sign rsa-pss-sha256 rsa -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
sign rsa-pss-sha384 rsa -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
sign ecdsa-sha256 ec -sha256
sign ecdsa-sha384 ec -sha384
[ "$HAVE_ED" = 1 ] && sign ed25519 ed

head -c 48 /dev/urandom >"$H/secret"
openssl pkeyutl -encrypt -pubin -inkey "$H/rsa.pub.pem" -in "$H/secret" -out "$H/ct" ||
    fail "openssl encrypt"
kw_cli "$KS_PORT" decrypt --in "$H/ct" --out "$H/pt" --key-cert "$H/rsa.crt" >/dev/null 2>&1 ||
    fail "decrypt through the token"
cmp -s "$H/secret" "$H/pt" || fail "decrypted bytes differ"
pass "RSA decrypt on the token matches the plaintext"

# 0xA2: the chain comes from the certificate object on the token.
"$KW_TESTS/kw_rawclient" --server "127.0.0.1:$KS_PORT" --cert "$PKI/edge.crt" --key "$PKI/edge.key" \
    --ca "$PKI/ca.crt" --op 0xA2 --key-cert "$H/rsa.crt" --out "$H/chain.der" >/dev/null ||
    fail "get certificate chain"
cmp -s "$H/chain.der" "$H/rsa.crt.der" || fail "chain from the token differs from the certificate"
pass "certificate chain served from the token's certificate object"

# A key deleted from the token behind the server's back: an error reply, and the server goes on.
sign rsa-pss-sha256 doomed -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
pkcs11-tool --module "$MODULE" --token-label keyward --login --pin 246810 --delete-object \
    --type privkey --id 04 >/dev/null 2>&1 || fail "delete the second RSA key"
if kw_cli "$KS_PORT" sign --alg rsa-pss-sha256 --in "$H/msg" --out "$H/sig" \
    --key-cert "$H/doomed.crt" >/dev/null 2>"$H/cli.err"; then
    fail "a deleted token key still signed"
fi
grep -Eiq "crypto|internal" "$H/cli.err" || fail "unexpected error for a deleted key: $(cat "$H/cli.err")"
kill -0 "$KS_PID" 2>/dev/null || fail "key server died on a token error"
sign rsa-pkcs1-sha256 rsa -sha256
pass "token error answered as an error reply; the server serves on"
kill "$KS_PID"
wait "$KS_PID" 2>/dev/null || true

# The same token through a YAML config and RFC 7512 URIs (object= narrows each to one key).
KS_PORT=$(free_port)
cat >"$H/ks.yaml" <<YAML
listen: "127.0.0.1:$KS_PORT"
cert: $PKI/keyserver.crt
key: $PKI/keyserver.key
ca: $PKI/ca.crt
workers: 2
pkcs11:
  - uri: "pkcs11:token=keyward;object=site-rsa?module-path=$MODULE&pin-source=file:$H/pin"
  - uri: "pkcs11:token=keyward;object=site-ec?pin-source=file:$H/pin"
    module: $MODULE
YAML
start_bg ks2 "$KW_BIN/keyward-keyserver" --config "$H/ks.yaml"
KS_PID=$LAST_PID
wait_port "$KS_PORT" 15 || fail "key server from ks.yaml did not start"
[ "$(grep -c "pkcs11 token 'keyward' .*: 1 usable key(s)" "$KW_TMP/ks2.log")" = 2 ] ||
    fail "object= in each URI did not select exactly one key"
sign rsa-pss-sha512 rsa -sha512 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
pass "YAML config with a pkcs11: URI"

if [ ! -f "$KW_PROVIDER" ]; then
    echo "skip: TLS handshakes (provider $KW_PROVIDER not built)"
    exit 0
fi
# Real TLS: s_server holds the certificate and a stub; the key stays on the token.
write_openssl_conf "$KW_TMP/prov.cnf" "127.0.0.1:$KS_PORT"
serve() { # NAME: s_server with NAME.crt and a stub for its key; sets SS_PORT, SS_PID
    "$KW_BIN/keyward" stub --cert "$H/$1.crt" --out "$H/$1.stub" 2>/dev/null || fail "keyward stub"
    SS_PORT=$(free_port)
    start_bg "sserver-$1" env OPENSSL_CONF="$KW_TMP/prov.cnf" LD_PRELOAD="$(kw_provider_preload)" \
        openssl s_server -accept "127.0.0.1:$SS_PORT" -cert "$H/$1.crt" -key "$H/$1.stub" -www -quiet
    SS_PID=$LAST_PID
    wait_port "$SS_PORT" 15 || fail "s_server did not start"
}
handshake() { # WHAT PATTERN s_client args...
    local what=$1 pattern=$2 out
    shift 2
    out=$(kw_https_get "$SS_PORT" "$@") || true
    echo "$out" >"$KW_TMP/client.out"
    grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "$what: not verified"
    grep -q "HTTP/1.0 200 ok" <<<"$out" || fail "$what: no data over TLS"
    grep -Eq "$pattern" <<<"$out" || fail "$what: expected /$pattern/"
    pass "TLS handshake with the token's key: $what"
}
serve rsa
handshake "TLS 1.3 RSA-PSS" "Peer signature type: RSA-PSS" -tls1_3
handshake "TLS 1.2 ECDHE-RSA" "Cipher is ECDHE-RSA-AES128-GCM-SHA256" -tls1_2 \
    -cipher ECDHE-RSA-AES128-GCM-SHA256
handshake "TLS 1.2 RSA key exchange" "Cipher is AES128-GCM-SHA256" -tls1_2 -cipher AES128-GCM-SHA256
kill "$SS_PID"
serve ec
handshake "TLS 1.3 ECDSA P-256" "Peer signature type: ECDSA" -tls1_3
handshake "TLS 1.2 ECDHE-ECDSA" "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" -tls1_2 \
    -cipher ECDHE-ECDSA-AES128-GCM-SHA256
