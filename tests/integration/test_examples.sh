#!/bin/bash
# The example configurations work when copied: examples/keyserver.yaml and examples/proxy.yaml
# are used as shipped, with only /etc/keyward pointed at a scratch directory laid out as they
# expect (from the test PKI) and their addresses moved to free loopback ports. The key server
# must start and sign; the proxy must start and carry a plain `curl` (HTTP/1.1, whatever ALPN
# curl offers) to a plain HTTP backend that gets no PROXY header. Then the key server example's
# commented-out PKCS#11 block, uncommented, must work with a SoftHSM2 token labelled as it says.
. "$(dirname "$0")/lib.sh"

make_pki
ETC=$KW_TMP/etc/keyward
mkdir -p "$ETC/keys" "$ETC/certs"
cp "$PKI/keyserver.crt" "$PKI/keyserver.key" "$PKI/edge.crt" "$PKI/edge.key" "$ETC/"
cp "$PKI/ca.crt" "$ETC/edge-ca.crt"        # the key server's CA of edges
cp "$PKI/ca.crt" "$ETC/keyserver-ca.crt"   # the proxy's CA of key servers
cp "$PKI"/keys/* "$ETC/keys/"
cp "$PKI/certs/rsa2048.crt" "$ETC/certs/www.example.com.crt"
cp "$PKI/certs/ecdsa-p256.crt" "$ETC/certs/api.example.com.crt"
"$KW_BIN/keyward" stub --cert "$ETC/certs/api.example.com.crt" \
    --out "$ETC/certs/api.example.com.stub" || fail "keyward stub"

KS=$(free_port)
KM=$(free_port)
# adapt FILE OUT SED-EXPRESSIONS...: FILE with /etc/keyward -> $ETC and the given substitutions;
# fails when a substitution matched nothing (the example changed: update this test with it).
adapt() {
    local in=$1 out=$2 e
    shift 2
    sed "s#/etc/keyward#$ETC#g" "$in" >"$out"
    for e in "$@"; do
        local d=${e:1:1} pat=${e:2}
        pat=${pat%%"$d"*}
        grep -q -- "$pat" "$out" || fail "$in no longer has '$pat': update test_examples.sh"
        sed -i "$e" "$out"
    done
}

adapt "$KW_SOURCE_DIR/examples/keyserver.yaml" "$KW_TMP/keyserver.yaml" \
    "s#\"0.0.0.0:2407\"#\"127.0.0.1:$KS\"#" "s#\"127.0.0.1:9247\"#\"127.0.0.1:$KM\"#"
start_bg ks "$KW_BIN/keyward-keyserver" --config "$KW_TMP/keyserver.yaml"
wait_port "$KS" 20 || fail "examples/keyserver.yaml: the key server did not start"
kw_cli "$KS" sign --alg ecdsa-sha256 --in "$PKI/ca.crt" --out "$KW_TMP/sig" \
    --key-cert "$PKI/certs/ecdsa-p256.crt" >/dev/null || fail "sign through examples/keyserver.yaml"
curl -sf "http://127.0.0.1:$KM/metrics" | kw_grep keyward_ || fail "metrics of examples/keyserver.yaml"
pass "examples/keyserver.yaml: starts, signs, serves metrics"

KS2=$(free_port)
start_keyserver ks2 "$KS2"
PX=$(free_port)
BK=$(free_port)
start_backend backend "$BK"
adapt "$KW_SOURCE_DIR/examples/proxy.yaml" "$KW_TMP/proxy.yaml" \
    "s#\"0.0.0.0:443\"#\"127.0.0.1:$PX\"#" "s#\"127.0.0.1:8080\"#\"127.0.0.1:$BK\"#" \
    "s#\"keys1.internal:2407\"#\"127.0.0.1:$KS\"#" "s#\"keys2.internal:2407\"#\"127.0.0.1:$KS2\"#"
start_proxy proxy "$PX" --config "$KW_TMP/proxy.yaml" --provider "$KW_PROVIDER"
for name in localhost rsa2048.example ecdsa-p256.example; do
    out=$(curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
        --resolve "$name:$PX:127.0.0.1" "https://$name:$PX/hello" 2>&1) ||
        fail "curl https://$name through examples/proxy.yaml: $out"
    case $out in
    *"path=/hello proxy=none"*) ;;
    *) fail "curl https://$name through examples/proxy.yaml: backend answered '$out'" ;;
    esac
done
pass "examples/proxy.yaml: curl reaches a plain HTTP backend (both certificates, no PROXY header)"

# The commented PKCS#11 block, uncommented, with a token labelled "keyward" and its PIN file.
softhsm_token
pkcs11-tool --module "$MODULE" --login --pin 246810 --token-label keyward --keypairgen \
    --key-type EC:prime256v1 --id 01 --label site >/dev/null 2>&1 || fail "key on the token"
cp "$H/pin" "$ETC/token.pin"
KS3=$(free_port)
KM3=$(free_port)
adapt "$KW_SOURCE_DIR/examples/keyserver.yaml" "$KW_TMP/keyserver-p11.yaml" \
    "s#\"0.0.0.0:2407\"#\"127.0.0.1:$KS3\"#" "s#\"127.0.0.1:9247\"#\"127.0.0.1:$KM3\"#" \
    "s%^# pkcs11:%pkcs11:%" "s%^#   - module: /usr/lib/softhsm/libsofthsm2.so%  - module: $MODULE%" \
    "s%^#     token:%    token:%" "s%^#     pin_file:%    pin_file:%"
start_bg ks3 "$KW_BIN/keyward-keyserver" --config "$KW_TMP/keyserver-p11.yaml"
wait_port "$KS3" 30 || fail "examples/keyserver.yaml with its pkcs11 block: did not start"
pkcs11-tool --module "$MODULE" --token-label keyward --read-object --type pubkey --id 01 \
    -o "$H/site.pub.raw" >/dev/null 2>&1 || fail "export the token's public key"
openssl pkey -pubin -in "$H/site.pub.raw" -outform DER -out "$H/site.pub.der" 2>/dev/null ||
    openssl pkey -pubin -inform DER -in "$H/site.pub.raw" -outform DER -out "$H/site.pub.der" ||
    fail "the token's public key is not readable"
kid=$(openssl dgst -sha256 -r "$H/site.pub.der" | cut -d' ' -f1)
kw_cli "$KS3" sign --alg ecdsa-sha256 --in "$PKI/ca.crt" --out "$KW_TMP/sig3" \
    --key-id "sha256:$kid" >/dev/null || fail "sign with the token's key: $(cat "$KW_TMP/ks3.log")"
openssl pkey -pubin -inform DER -in "$H/site.pub.der" -out "$H/site.pub.pem"
openssl dgst -sha256 -verify "$H/site.pub.pem" -signature "$KW_TMP/sig3" "$PKI/ca.crt" \
    >/dev/null || fail "the token key's signature does not verify"
pass "examples/keyserver.yaml's pkcs11 block, uncommented, serves a SoftHSM2 token"
