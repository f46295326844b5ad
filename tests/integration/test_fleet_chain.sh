#!/bin/bash
# Chaining: edge -> key server A (no keys, --upstream B) -> key server B (keys). Signatures made
# through the chain verify with openssl; 0xA2 certificate chains and "key not found" are relayed;
# 0xA3 at A lists B's keys (or A's own alone when B is down);
# the hop limit cuts a loop A<->B of key servers without keys quickly with 0x42; a dead upstream is
# 0x42 too; an openssl s_server whose provider points at A completes real handshakes; SIGTERM
# stops a forwarding server cleanly.
. "$(dirname "$0")/lib.sh"

make_pki
make_peer_identity ks-a
W=$KW_TMP/w
mkdir -p "$W"
head -c 3000 /dev/urandom >"$W/msg"

PORT_B=$(free_port)
PORT_A=$(free_port)
start_ks_as ks-b "$PORT_B" keyserver --keys "$PKI/keys"
# A has no keys and uses its own --cert/--key (ks-a, valid for client auth) towards B.
start_ks_as ks-a "$PORT_A" ks-a --upstream "127.0.0.1:$PORT_B"
PID_A=$KS_PID

# sign_check ALG KEY: the CLI signs through A; openssl verifies with the certificate's key.
sign_check() {
    local alg=$1 key=$2 crt=$PKI/certs/$2.crt
    kw_cli "$PORT_A" sign --alg "$alg" --key-id "sha256:$(kw_keyid "$crt")" --in "$W/msg" \
        --out "$W/sig" 2>"$W/err" || fail "sign $alg with $key through A: $(cat "$W/err")"
    openssl x509 -in "$crt" -noout -pubkey >"$W/pub.pem"
    case $alg in
    ed25519)
        openssl pkeyutl -verify -pubin -inkey "$W/pub.pem" -rawin -in "$W/msg" \
            -sigfile "$W/sig" >/dev/null 2>&1 ;;
    rsa-pss-*)
        openssl dgst "-${alg##*-}" -verify "$W/pub.pem" -sigopt rsa_padding_mode:pss \
            -sigopt rsa_pss_saltlen:digest -signature "$W/sig" "$W/msg" >/dev/null 2>&1 ;;
    *)
        openssl dgst "-${alg##*-}" -verify "$W/pub.pem" -signature "$W/sig" "$W/msg" \
            >/dev/null 2>&1 ;;
    esac || fail "signature $alg by $key through the chain does not verify"
}
sign_check rsa-pkcs1-sha256 rsa2048
sign_check rsa-pss-sha384 rsa3072
sign_check ecdsa-sha256 ecdsa-p256
sign_check ecdsa-sha384 ecdsa-p384
sign_check ed25519 ed25519
pass "signatures through A -> B verify with openssl (RSA PKCS#1, PSS, ECDSA P-256/P-384, Ed25519)"

# By SKI (the gokeyless key id), through the chain.
ski=$(openssl x509 -in "$PKI/certs/rsa2048.crt" -noout -ext subjectKeyIdentifier | tail -n 1 |
    tr -d ' :' | tr 'A-F' 'a-f')
kw_cli "$PORT_A" sign --alg rsa-pkcs1-sha256 --key-id "ski:$ski" --in "$W/msg" --out "$W/sig" \
    2>"$W/err" || fail "sign by SKI through A: $(cat "$W/err")"
openssl x509 -in "$PKI/certs/rsa2048.crt" -noout -pubkey >"$W/pub.pem"
openssl dgst -sha256 -verify "$W/pub.pem" -signature "$W/sig" "$W/msg" >/dev/null 2>&1 ||
    fail "signature by SKI through the chain does not verify"
pass "a key named by SKI is forwarded too"

# 0xA2 through the chain, by digest and by SNI: exactly B's .crt chain.
openssl x509 -in "$PKI/keys/ecdsa-p384.crt" -outform DER -out "$W/leaf.der"
kw_rawc "$PORT_A" --op 0xa2 --key-cert "$PKI/certs/ecdsa-p384.crt" --out "$W/chain" >/dev/null ||
    fail "0xA2 by digest through A"
cmp -s "$W/chain" "$W/leaf.der" || fail "0xA2 by digest through A: not B's chain"
kw_rawc "$PORT_A" --op 0xa2 --sni ecdsa-p384.example --out "$W/chain" >/dev/null ||
    fail "0xA2 by SNI through A"
cmp -s "$W/chain" "$W/leaf.der" || fail "0xA2 by SNI through A: not B's chain"
kw_rawc "$PORT_A" --op 0xa2 --sni nothing.example --expect-error 9 >/dev/null ||
    fail "0xA2 for an unknown name through A must relay B's 0x09"
pass "0xA2 certificate chains by digest and SNI come from B through A; unknown name relays 0x09"

# 0xA3 through the chain: A holds no key but lists B's (what a provider's load-time check asks).
kw_rawc "$PORT_A" --op 0xa3 --out "$W/ids" >/dev/null || fail "0xA3 through A"
[ "$(stat -c %s "$W/ids")" = $((7 * 32)) ] || fail "0xA3 through A: $(stat -c %s "$W/ids") bytes"
for key in rsa2048 rsa3072 rsa4096 ecdsa-p256 ecdsa-p384 ecdsa-p521 ed25519; do
    kw_grep -F "$(kw_keyid "$PKI/certs/$key.crt")" <<<"$(xxd -p -c 32 "$W/ids")" ||
        fail "0xA3 through A: $key missing"
done
pass "0xA3 through A lists B's 7 keys, once each"

# Errors are relayed: a key nobody holds is B's 0x02; a request arriving with no hop left that
# needs forwarding is 0x42 at A; with one hop left it reaches B.
openssl dgst -sha256 -binary "$W/msg" >"$W/dgst"
kw_rawc "$PORT_A" --op 0x05 --key-digest "$(printf '%064d' 7)" --payload-file "$W/dgst" \
    --expect-error 2 >/dev/null || fail "unknown key through A must relay 0x02"
kw_rawc "$PORT_A" --op 0x05 --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$W/dgst" \
    --hops 0 --expect-error 0x42 >/dev/null || fail "hops 0 at A must be 0x42"
kw_rawc "$PORT_A" --op 0x05 --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$W/dgst" \
    --hops 1 >/dev/null || fail "hops 1 at A must reach B"
kw_rawc "$PORT_B" --op 0x05 --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$W/dgst" \
    --hops 0 >/dev/null || fail "hops 0 at the key's holder needs no forwarding: must succeed"
pass "relayed 0x02 for unknown keys; hop limit: 0 left -> 0x42 at A, 1 left reaches B"

# 200 pipelined requests through the chain on one connection.
kw_rawc "$PORT_A" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$W/dgst" \
    --count 200 --inflight 50 | kw_grep "200 replies, 0 unexpected" ||
    fail "200 pipelined requests through A"
pass "200 pipelined ECDSA requests (50 in flight) through A -> B"

# A loop of key servers without keys: C -> D -> C ... ends by the hop limit, quickly.
PORT_C=$(free_port)
PORT_D=$(free_port)
start_ks_as ks-c "$PORT_C" ks-a --upstream "127.0.0.1:$PORT_D"
start_ks_as ks-d "$PORT_D" ks-a --upstream "127.0.0.1:$PORT_C"
t0=$(date +%s%N)
if kw_cli "$PORT_C" sign --alg ecdsa-sha256 --key-cert "$PKI/certs/ecdsa-p256.crt" \
    --in "$W/msg" --out "$W/sig" 2>"$W/err"; then
    fail "a sign through a loop of key servers without keys succeeded"
fi
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "upstream-unavailable" "$W/err" || fail "loop: expected 0x42 upstream-unavailable, got: $(cat "$W/err")"
[ "$ms" -lt 2500 ] || fail "loop: took $ms ms to fail (hop limit should cut it at once)"
grep -q "no hop left" "$KW_TMP/ks-c.log" "$KW_TMP/ks-d.log" || fail "loop: no hop-limit log line"
pass "loop C <-> D without keys: error 0x42 after $ms ms (hop limit), CLI says: $(head -c 160 "$W/err")"

# A dead upstream: 0x42, within the upstream timeout.
PORT_E=$(free_port)
DEAD=$(free_port)
start_ks_as ks-e "$PORT_E" ks-a --upstream "127.0.0.1:$DEAD" --upstream-timeout-ms 1500
t0=$(date +%s%N)
kw_rawc "$PORT_E" --op 0x05 --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$W/dgst" \
    --expect-error 0x42 >/dev/null || fail "dead upstream must be 0x42"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 4000 ] || fail "dead upstream: took $ms ms"
pass "dead upstream: 0x42 after $ms ms"
kw_rawc "$PORT_E" --op 0xa3 --out "$W/ids" >/dev/null || fail "0xA3 with a dead upstream"
[ "$(stat -c %s "$W/ids")" = 0 ] || fail "0xA3 with a dead upstream: not the (empty) local list"
pass "0xA3 with a dead upstream: the local list (empty), not an error"

# A real TLS server through the chain: openssl s_server with the keyward provider pointing at A.
if [ -f "$KW_PROVIDER" ]; then
    write_openssl_conf "$W/prov.cnf" "127.0.0.1:$PORT_A"
    PRELOAD=$(kw_provider_preload)
    for k in rsa2048 ecdsa-p256; do
        SS_PORT=$(free_port)
        start_bg "ss-$k" env OPENSSL_CONF="$W/prov.cnf" LD_PRELOAD="$PRELOAD" \
            openssl s_server -accept "127.0.0.1:$SS_PORT" -cert "$PKI/certs/$k.crt" \
            -key "keyward:sha256=$(kw_keyid "$PKI/certs/$k.crt")" -www -quiet
        SS_PID=$LAST_PID
        wait_port "$SS_PORT" 15 || fail "s_server $k did not start"
        for v in -tls1_3 -tls1_2; do
            out=$(kw_https_get "$SS_PORT" "$v") || true
            grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "s_server $k $v: not verified"
            grep -q "HTTP/1.0 200 ok" <<<"$out" || fail "s_server $k $v: no HTTP reply"
        done
        kill "$SS_PID" 2>/dev/null || true
        wait "$SS_PID" 2>/dev/null || true
    done
    pass "openssl s_server (provider -> A -> B) + s_client: TLS 1.3 and 1.2 handshakes, RSA and ECDSA"
else
    echo "skip: $KW_PROVIDER not built; no s_server handshake through the chain"
fi

grep -q "forwarding keys not held here to 127.0.0.1:$PORT_B" "$KW_TMP/ks-a.log" ||
    fail "A did not log its upstream"
kill -TERM "$PID_A"
rc=0
wait "$PID_A" || rc=$?
[ "$rc" = 0 ] || fail "A exited with $rc after SIGTERM"
pass "SIGTERM stops a forwarding key server cleanly (exit 0)"
