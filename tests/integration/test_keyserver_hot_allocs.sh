#!/bin/bash
# No allocation per request on the key server's hot path (issue 16): the key server runs with
# tests/integration/preload/kw_malloc_count.so, which counts every malloc/calloc/realloc and
# writes the count on SIGUSR2. One connection sends 100 pings, another 2,100 (1 in flight, on the
# same kind of connection), and the difference of their counts divided by 2,000 is what a request
# costs, the connection's own allocations cancelling out. A ping travels the whole carrying path
# (TLS record in, frame parse, dispatch, reply, coalescing, TLS record out, socket write) without a
# key operation. What is left is OpenSSL 3.0's record layer (3 allocations per record written,
# 1 per record read, inside SSL_write and SSL_read): 4 per request at 1 in flight; before issue
# 16 the flush's socket write added a malloc (5). ECDSA and RSA signatures are printed too (their
# extra allocations are OpenSSL's signing). A count, not a time: stable on a loaded machine.
. "$(dirname "$0")/lib.sh"

if [ "${KW_SANITIZE:-OFF}" = ON ]; then
    echo "skip: an LD_PRELOAD allocator counter and ASan's allocator do not mix"
    exit 0
fi
PRELOAD=$KW_TESTS/kw_malloc_count.so
[ -f "$PRELOAD" ] || fail "build first: $PRELOAD missing"
make_pki
PORT=$(free_port)
COUNT=$KW_TMP/allocs
LD_PRELOAD=$PRELOAD KW_MALLOC_COUNT_FILE=$COUNT start_keyserver ks "$PORT" --workers 0 \
    --log-level warn
DGST=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')

allocs() { # the server's allocation count so far
    rm -f "$COUNT"
    kill -USR2 "$KS_PID"
    local i
    for i in $(seq 100); do
        [ -s "$COUNT" ] && break
        sleep 0.02
    done
    awk '{print $2}' "$COUNT"
}
# per_request OPCODE [args]: allocations per request at 1 in flight, times 100 (integer)
per_request() {
    local c0 c1 c2
    kw_rawc "$PORT" --count 100 "$@" >/dev/null || fail "warm-up $*"
    c0=$(allocs)
    kw_rawc "$PORT" --count 100 "$@" >/dev/null || fail "100 requests $*"
    c1=$(allocs)
    kw_rawc "$PORT" --count 2100 "$@" >/dev/null || fail "2,100 requests $*"
    c2=$(allocs)
    echo $(((c2 - c1 - (c1 - c0)) / 20))
}
ping=$(per_request --op 0xF1 --payload-hex 00)
ecdsa=$(per_request --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-hex "$DGST")
rsa=$(per_request --op 0x05 --key-cert "$PKI/certs/rsa2048.crt" --payload-hex "$DGST")
fmt() { awk -v v="$1" 'BEGIN {printf "%.2f", v / 100}'; }
echo "allocations per request (1 in flight): ping $(fmt "$ping"), ECDSA P-256 $(fmt "$ecdsa")," \
    "RSA-2048 $(fmt "$rsa")"
[ "$ping" -le 400 ] ||
    fail "a ping costs $(fmt "$ping") allocations (OpenSSL's record layer: 4; the rest is ours)"
[ "$ecdsa" -ge "$ping" ] || fail "fewer allocations for ECDSA than for a ping: the count is off"
pass "ping $(fmt "$ping") allocations per request (OpenSSL's 4 per record pair), none of ours"
