#!/bin/bash
# The keyward CLI against the real key server: ping; sign with every algorithm and every key type
# of the test PKI, each signature verified by openssl (dgst -verify, PSS with salt = digest length,
# pkeyutl -rawin for Ed25519), by --key-cert and by --key-id, plain and with 1024-byte padding;
# decrypt of what openssl encrypted; bench; and the failures users meet: unknown key, wrong key
# type, a rogue client identity, a wrong CA, a key server that is down (clear error within the
# timeout, non-zero exit), bad usage (exit 2) and --help everywhere (exit 0).
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT" --enable-op rsa-decrypt # keyward decrypt sends 0x01
W=$KW_TMP/work
mkdir -p "$W"
head -c 3000 /dev/urandom >"$W/msg"

kw_cli "$PORT" ping --count 3 >"$W/ping.out" || fail "ping"
grep -q "pong 3: time=" "$W/ping.out" || fail "ping output: $(cat "$W/ping.out")"
pass "ping prints round-trip times"

# verify KEYNAME ALG SIG
verify() {
    local pub=$W/$1.pub alg=$2 sig=$3
    openssl x509 -in "$PKI/certs/$1.crt" -pubkey -noout >"$pub"
    case $alg in
    ed25519)
        openssl pkeyutl -verify -pubin -inkey "$pub" -rawin -in "$W/msg" -sigfile "$sig" ;;
    rsa-pss-*)
        openssl dgst "-${alg##*-}" -verify "$pub" -sigopt rsa_padding_mode:pss \
            -sigopt rsa_pss_saltlen:digest -signature "$sig" "$W/msg" ;;
    *)
        openssl dgst "-${alg##*-}" -verify "$pub" -signature "$sig" "$W/msg" ;;
    esac
}

keyid() { # sha256:HEX of a site certificate's SPKI
    echo "sha256:$(openssl x509 -in "$PKI/certs/$1.crt" -pubkey -noout |
        openssl pkey -pubin -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)"
}

RSA_ALGS="rsa-pkcs1-sha1 rsa-pkcs1-sha256 rsa-pkcs1-sha384 rsa-pkcs1-sha512 rsa-pss-sha256 rsa-pss-sha384 rsa-pss-sha512"
EC_ALGS="ecdsa-sha256 ecdsa-sha384 ecdsa-sha512"
n=0
for key in rsa2048 rsa3072 rsa4096 ecdsa-p256 ecdsa-p384 ecdsa-p521 ed25519; do
    case $key in rsa*) algs=$RSA_ALGS ;; ecdsa*) algs=$EC_ALGS ;; *) algs=ed25519 ;; esac
    for alg in $algs; do
        kw_cli "$PORT" sign --alg "$alg" --in "$W/msg" --out "$W/sig" \
            --key-cert "$PKI/certs/$key.crt" || fail "sign $key $alg"
        verify "$key" "$alg" "$W/sig" >/dev/null || fail "openssl rejects $key $alg signature"
        n=$((n + 1))
    done
    # once per key: by --key-id, and padded like a gokeyless client
    alg=${algs%% *}
    kw_cli "$PORT" sign --alg "$alg" --in "$W/msg" --out "$W/sig2" --key-id "$(keyid "$key")" \
        --pad 1024 || fail "sign $key $alg by --key-id with padding"
    verify "$key" "$alg" "$W/sig2" >/dev/null || fail "openssl rejects $key $alg (--key-id)"
done
pass "sign: $n algorithm x key combinations verified by openssl (+ --key-id, --pad 1024)"

for key in rsa2048 rsa4096; do
    openssl rand -out "$W/pt" 48
    openssl x509 -in "$PKI/certs/$key.crt" -pubkey -noout >"$W/$key.pub"
    openssl pkeyutl -encrypt -pubin -inkey "$W/$key.pub" -in "$W/pt" -out "$W/ct"
    kw_cli "$PORT" decrypt --in "$W/ct" --out "$W/pt2" --key-cert "$PKI/certs/$key.crt" ||
        fail "decrypt $key"
    cmp -s "$W/pt" "$W/pt2" || fail "decrypt $key: wrong plaintext"
done
pass "decrypt: openssl-encrypted PKCS#1 v1.5 ciphertexts (rsa2048, rsa4096)"

kw_cli "$PORT" bench --alg ecdsa-sha256 --inflight 8 --seconds 1 \
    --key-cert "$PKI/certs/ecdsa-p256.crt" >"$W/bench.out" || fail "bench"
grep -Eq '^alg=ecdsa-sha256 .* errors=0 ops_per_sec=[0-9]' "$W/bench.out" ||
    fail "bench output: $(cat "$W/bench.out")"
pass "bench: $(grep -o 'ops_per_sec=[0-9.]*' "$W/bench.out")"

expect_fail 1 "does not hold this key" kw_cli "$PORT" sign --alg ecdsa-sha256 --in "$W/msg" \
    --out "$W/sig" --key-id "sha256:$(printf '%064d' 7)"
pass "unknown key: $(cat "$W/err")"
expect_fail 2 "needs an EC key" kw_cli "$PORT" sign --alg ecdsa-sha256 --in "$W/msg" \
    --out "$W/sig" --key-cert "$PKI/certs/rsa2048.crt"
expect_fail 1 "does not fit the key" kw_cli "$PORT" sign --alg ecdsa-sha256 --in "$W/msg" \
    --out "$W/sig" --key-id "$(keyid rsa2048)"
pass "wrong algorithm for the key: refused with a hint"

expect_fail 1 "TLS with the key server failed" "$KW_BIN/keyward" ping --server "127.0.0.1:$PORT" \
    --cert "$PKI/rogue.crt" --key "$PKI/rogue.key" --ca "$PKI/ca.crt"
expect_fail 1 "certificate was not accepted" "$KW_BIN/keyward" ping --server "127.0.0.1:$PORT" \
    --cert "$PKI/edge.crt" --key "$PKI/edge.key" --ca "$PKI/rogue-ca.crt"
pass "rogue identity and wrong CA: TLS errors that name the cause"

DOWN=$(free_port)
start=$(date +%s%N)
expect_fail 1 "cannot reach the key server" kw_cli "$DOWN" ping --timeout 2000
ms=$((($(date +%s%N) - start) / 1000000))
grep -q "127.0.0.1:$DOWN" "$W/err" || fail "down server error does not name the server"
[ "$ms" -lt 2500 ] || fail "down server: error after $ms ms, timeout was 2000"
pass "key server down: '$(cut -c1-80 "$W/err")...' after $ms ms"

# A key server that stops answering (SIGSTOP): timeout error within --timeout.
kill -STOP "$KS_PID"
start=$(date +%s%N)
expect_fail 1 "no answer within 1000 ms" kw_cli "$PORT" ping --timeout 1000
ms=$((($(date +%s%N) - start) / 1000000))
kill -CONT "$KS_PID"
[ "$ms" -lt 2200 ] || fail "stalled server: error after $ms ms, timeout was 1000"
pass "key server stalled: timeout error after $ms ms"

expect_fail 2 "needs --alg" kw_cli "$PORT" sign --in "$W/msg" --out "$W/sig" \
    --key-cert "$PKI/certs/rsa2048.crt"
expect_fail 2 "exactly one of --key-cert" kw_cli "$PORT" sign --alg ed25519 --in "$W/msg" \
    --out "$W/sig"
expect_fail 2 "no key server" "$KW_BIN/keyward" ping --cert "$PKI/edge.crt" \
    --key "$PKI/edge.key" --ca "$PKI/ca.crt"
expect_fail 2 "unknown command" "$KW_BIN/keyward" frobnicate
expect_fail 2 "bad key server address" "$KW_BIN/keyward" ping --server "127.0.0.1:99999" \
    --cert "$PKI/edge.crt" --key "$PKI/edge.key" --ca "$PKI/ca.crt"
for cmd in ping sign decrypt keygen bench; do
    "$KW_BIN/keyward" "$cmd" --help | kw_grep "usage: keyward $cmd" || fail "$cmd --help"
done
"$KW_BIN/keyward" --help | kw_grep "Commands:" || fail "keyward --help"
pass "usage errors exit 2 with a message; --help works for every command"

"$KW_BIN/keyward" keygen --out "$W/pki2" >/dev/null || fail "keygen"
for f in ca.crt keyserver.key edge.crt keys/rsa2048.key keys/ed25519.crt certs/ecdsa-p256.crt; do
    [ -s "$W/pki2/$f" ] || fail "keygen did not write $f"
done
pass "keygen writes a complete test PKI"
