#!/bin/bash
# No padding oracle in 0xA0 (TLS RSA decrypt) nor 0xA1 (master secret): thousands of requests
# with valid and invalid PKCS#1 type-2 padding (crafted with raw RSA on the site public key:
# random blocks, zero padding, no separator, wrong block type, wrong PMS length, wrong version
# bytes), interleaved in random order. Fails when any reply differs in form (always 0xF0 with 48
# bytes; a valid ciphertext yields its own PMS / master secret; an invalid one never what its
# embedded bytes would give), when an invalid ciphertext sent again gets another answer (implicit
# rejection must be deterministic, issue 20 item 3), when a 0xA0 reply does not start with the
# version bytes, or when a second key server holding the same keys answers differently. Timing:
# Welch's t over the two latency distributions is printed, not asserted (a shared 2-core VM is
# too noisy for a timed test).
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT"
PORT2=$(free_port)
start_keyserver ks2 "$PORT2"
samples=3000
[ "${KW_SANITIZE:-OFF}" = ON ] && samples=1000

oracle() { # KEY OP N
    local key=$1 op=$2 n=$3 out t
    out=$("$KW_TESTS/kw_hard_oracle" --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" --key-cert "$PKI/keys/$key.crt" \
        --samples "$n" --op "$op" --peer "127.0.0.1:$PORT2") ||
        fail "$key $op: replies tell valid from invalid padding: $out"
    echo "$out" | sed 's/^/   /'
    t=$(echo "$out" | sed -n 's/^welch t = \(-*[0-9.]*\).*/\1/p')
    [ -n "$t" ] || fail "$key: no t value in: $out"
    pass "$key $op: $n valid + $n invalid requests, every reply 0xF0 with 48 bytes, the same" \
        "again and from a second key server; Welch t = $t"
}
for key in rsa2048 rsa4096; do
    n=$samples
    [ "$key" = rsa4096 ] && n=$((samples / 4))
    oracle "$key" 0xa0 "$n"
done
oracle rsa2048 0xa1 $((samples / 4))
kill -0 "$KS_PID" 2>/dev/null || fail "key server died"
