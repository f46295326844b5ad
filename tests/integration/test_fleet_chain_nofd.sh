#!/bin/bash
# A forwarding key server out of file descriptors says so (issue 20, finding 9): each request in
# flight upstream holds an eventfd; with a low RLIMIT_NOFILE and many requests in flight, the
# requests that cannot be forwarded are answered 0x42 and the log names the cause (too many open
# files, and what to raise), not "out of memory". The server keeps serving afterwards.
. "$(dirname "$0")/lib.sh"

make_pki
make_peer_identity ks-a
head -c 32 /dev/urandom >"$KW_TMP/dgst"
PORT_A=$(free_port)
PORT_B=$(free_port)
start_ks_as ks-b "$PORT_B" keyserver --keys "$PKI/keys"
# A: no keys, few descriptors (ulimit applies to the server started in this subshell only).
(
    ulimit -n 40
    exec "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$PORT_A" --cert "$PKI/ks-a.crt" \
        --key "$PKI/ks-a.key" --ca "$PKI/ca.crt" --upstream "127.0.0.1:$PORT_B" --workers 1
) >"$KW_TMP/ks-a.log" 2>&1 &
KW_PIDS+=("$!")
wait_port "$PORT_A" 15 || fail "key server A did not start"

kw_rawc "$PORT_A" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$KW_TMP/dgst" \
    >/dev/null || fail "one forwarded signature"
out=$(kw_rawc "$PORT_A" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" \
    --payload-file "$KW_TMP/dgst" --count 200 --inflight 200 --timeout-ms 10000 2>&1) || true
echo "200 in flight through A: $out"
grep -q "too many open files" "$KW_TMP/ks-a.log" ||
    fail "A ran out of descriptors without saying so: $(grep -i 'forward' "$KW_TMP/ks-a.log" | head -3)"
! grep -q "out of memory" "$KW_TMP/ks-a.log" || fail "A blames memory for missing descriptors"
kw_rawc "$PORT_A" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$KW_TMP/dgst" \
    >/dev/null || fail "a forwarded signature after the flood"
pass "out of descriptors: the log says '$(grep -o 'cannot forward.*' "$KW_TMP/ks-a.log" | head -1)'; A serves again after"
