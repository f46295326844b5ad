#!/bin/bash
# No padding oracle in 0xA0 (TLS RSA decrypt): thousands of requests with valid and invalid
# PKCS#1 type-2 padding (crafted with raw RSA on the site public key: random blocks, zero padding,
# no separator, wrong block type, wrong PMS length, wrong version bytes), interleaved in random
# order. Fails when any reply differs in form (always 0xF0 with 48 bytes; a valid ciphertext
# yields its own PMS; an invalid one never its embedded bytes). Timing: Welch's t over the two
# latency distributions is printed, not asserted (a shared 2-core VM is too noisy for a timed test).
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT"
samples=3000
[ "${KW_SANITIZE:-OFF}" = ON ] && samples=1000

for key in rsa2048 rsa4096; do
    n=$samples
    [ "$key" = rsa4096 ] && n=$((samples / 4))
    out=$("$KW_TESTS/kw_hard_oracle" --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" --key-cert "$PKI/keys/$key.crt" \
        --samples "$n") || fail "$key: replies differ between valid and invalid padding: $out"
    echo "$out" | sed 's/^/   /'
    t=$(echo "$out" | sed -n 's/^welch t = \(-*[0-9.]*\).*/\1/p')
    [ -n "$t" ] || fail "$key: no t value in: $out"
    pass "$key: $n valid + $n invalid 0xA0 requests, every reply 0xF0 with 48 bytes; Welch t = $t"
done
kill -0 "$KS_PID" 2>/dev/null || fail "key server died"
