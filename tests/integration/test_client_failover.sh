#!/bin/bash
# Several key servers behind one libkeyward client, under a steady load of verified ECDSA
# signatures (kw_client_load, 32 in flight):
#   1. both servers take traffic;
#   2. one is killed with SIGKILL mid-run: zero failed requests (its in-flight requests are
#      retried on the other);
#   3. it is restarted on the same port: it rejoins and takes traffic again;
#   4. it is frozen with SIGSTOP: requests stuck on it time out per try and are retried on the
#      other server, zero failures; after SIGCONT it rejoins again.
# Also: a host name that resolves to several addresses counts as several servers.
. "$(dirname "$0")/lib.sh"

make_pki
A=$(free_port)
B=$(free_port)
start_keyserver ksa "$A"
start_keyserver ksb "$B"
KSB=$KS_PID
OUT=$KW_TMP/load.out

"$KW_TESTS/kw_client_load" --server "127.0.0.1:$A,127.0.0.1:$B" --cert "$PKI/edge.crt" \
    --key "$PKI/edge.key" --ca "$PKI/ca.crt" --key-cert "$PKI/certs/ecdsa-p256.crt" \
    --inflight 32 --seconds 20 --interval-ms 250 --timeout-ms 5000 >"$OUT" 2>"$KW_TMP/load.log" &
LOAD=$!
KW_PIDS+=("$LOAD")

# completed B: replies server B has given so far, from the last progress line.
completed_b() {
    grep '^t=' "$OUT" | tail -n 1 | grep -o "srv1=127.0.0.1:$B/[a-z]*/[0-9]*" | cut -d/ -f3
}
sleep 2
b1=$(completed_b)
[ "${b1:-0}" -gt 0 ] || fail "server B got no traffic at the start: $(tail -n 2 "$OUT")"
pass "both servers take traffic ($(tail -n 1 "$OUT"))"

kill -9 "$KSB"
wait "$KSB" 2>/dev/null || true
sleep 2
# kw_client_load keeps SIGPIPE's default action: a write on B's reset connection must come back
# as an error code (libkeyward sends with MSG_NOSIGNAL), not kill the process.
kill -0 "$LOAD" 2>/dev/null || fail "kw_client_load died when B was killed (SIGPIPE?): $(tail -n 3 "$KW_TMP/load.log")"
b2=$(completed_b)
grep '^t=' "$OUT" | tail -n 1 | kw_grep "srv1=127.0.0.1:$B/down" || fail "B not marked down"
grep -q 'failed=[1-9]' "$OUT" && fail "requests failed after SIGKILL: $(grep 'failed=[1-9]' "$OUT" | head -n 1)"
pass "server B killed (SIGKILL): no failed requests, B marked down"

start_keyserver ksb2 "$B"
KSB=$KS_PID
for _ in $(seq 1 40); do # the backoff is at most 5 s (+20% jitter)
    sleep 0.25
    [ "$(completed_b)" -gt "$b2" ] && break
done
b3=$(completed_b)
[ "$b3" -gt "$b2" ] || fail "restarted server B got no traffic: $(tail -n 1 "$OUT")"
pass "server B restarted: it rejoined and answered $((b3 - b2)) requests so far"

kill -STOP "$KSB"
sleep 3
kill -CONT "$KSB"
b4=$(completed_b)
for _ in $(seq 1 40); do
    sleep 0.25
    [ "$(completed_b)" -gt "$b4" ] && break
done
[ "$(completed_b)" -gt "$b4" ] || fail "server B did not rejoin after SIGCONT: $(tail -n 1 "$OUT")"
pass "server B frozen 3 s (SIGSTOP) and resumed: rejoined"

wait "$LOAD" || fail "load tool failed: $(tail -n 3 "$OUT") $(tail -n 5 "$KW_TMP/load.log")"
grep -q '^total ok=[1-9][0-9]* failed=0$' "$OUT" || fail "failures: $(tail -n 1 "$OUT")"
pass "$(tail -n 1 "$OUT") over 20 s, through a kill, a restart and a freeze"

# A name with several addresses = several servers: "localhost" (127.0.0.1 and ::1 here, when
# the system resolves both; the key server listens on 127.0.0.1 only, so ::1 is down).
if getent ahosts localhost | kw_grep '::1'; then
    "$KW_TESTS/kw_client_load" --server "localhost:$A" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" --key-cert "$PKI/certs/ecdsa-p256.crt" \
        --inflight 4 --seconds 1 --interval-ms 500 >"$OUT" 2>/dev/null ||
        fail "localhost with two addresses: $(tail -n 2 "$OUT")"
    grep -q "srv1=" "$OUT" || fail "localhost did not become two servers: $(tail -n 1 "$OUT")"
    pass "localhost resolved to two servers; the one not listening is skipped, no failures"
else
    echo "skip: localhost does not resolve to ::1 here"
fi
