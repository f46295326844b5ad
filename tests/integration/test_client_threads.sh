#!/bin/bash
# Many threads sharing one libkeyward client with blocking calls (kw_threads: 1, 8 and 32 threads,
# verified ECDSA signatures and pings), as a multi-threaded server using the provider without
# ASYNC does: the client's direct paths (a caller sending while the I/O thread sleeps, a waiter
# reading its connection itself) must stay correct when several callers share a connection, and
# when the key server restarts under them.
. "$(dirname "$0")/lib.sh"

make_pki
KS_PORT=$(free_port)
start_keyserver ks "$KS_PORT" --workers 2
threads() { # N SECONDS
    "$KW_TESTS/kw_threads" --server "127.0.0.1:$KS_PORT" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" --key-cert "$PKI/certs/ecdsa-p256.crt" \
        --threads "$1" --seconds "$2"
}
for n in 1 8 32; do
    out=$(threads "$n" 2) || fail "$n threads: $out"
    pass "$n threads, blocking calls on one client: $out"
done

# The key server restarts while 8 threads call: calls during the gap may fail (it is the only
# key server), the process must not hang or crash, and calls succeed again afterwards.
rc=0
threads 8 4 >"$KW_TMP/restart.out" 2>&1 &
TPID=$!
sleep 1
kill "$KS_PID"
wait "$KS_PID" 2>/dev/null || true
start_keyserver ks2 "$KS_PORT" --workers 2
wait "$TPID" || rc=$?
grep -q "^threads=8 ok=" "$KW_TMP/restart.out" || fail "kw_threads across a restart: $(tail -3 "$KW_TMP/restart.out")"
out=$(threads 8 1) || fail "8 threads after the restart: $out"
pass "key server restarted under 8 threads: $(grep '^threads' "$KW_TMP/restart.out") (exit $rc); then $out"
