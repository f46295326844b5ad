#!/bin/bash
# Fleet fail-over through keyward-proxy (issue 5 item 6): two real key servers with the same keys
# behind one proxy (--keyserver twice);
#   1. 500 full handshakes (no resumption, each one a signature on a key server) plus a request
#      each, with key server B killed by SIGKILL in the middle of the run: 0 failed handshakes;
#   2. B restarted on the same port: once the client library's health check (ping, backoff at
#      most 5 s) sees it back, B takes handshakes again: its Prometheus counters and its audit log
#      show the operations, and the handshakes after the restart fail 0 times either.
# Traffic is counted on the key servers themselves (--metrics, pings left out), never timed.
. "$(dirname "$0")/lib.sh"
if ! proxy_remote_ok; then
    echo "skip: $KW_PROVIDER or keyward-keyserver not built"
    exit 0
fi
make_pki
N=500
CONNS=8
SITE=rsa2048.example

A=$(free_port)
B=$(free_port)
MA=$(free_port)
MB=$(free_port)
start_keyserver ksa "$A" --metrics "127.0.0.1:$MA" --audit-log "$KW_TMP/audit-a.jsonl"
start_keyserver ksb "$B" --metrics "127.0.0.1:$MB" --audit-log "$KW_TMP/audit-b.jsonl"
KSB=$KS_PID
wait_port "$MA" 10 || fail "metrics of key server A not open"
wait_port "$MB" 10 || fail "metrics of key server B not open"

BP=$(free_port)
start_backend backend "$BP"
PP=$(free_port)
# shellcheck disable=SC2046
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" --threads 2 --handshake-timeout-ms 30000 \
    --cert "$PKI/certs/rsa2048.crt" --cert "$PKI/certs/ecdsa-p256.crt" $(proxy_ks_args "$A" "$B")

# ops MPORT: key operations (every opcode but ping, any result) the key server with metrics on
# 127.0.0.1:MPORT has answered since it started.
ops() {
    local m
    m=$(curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics") ||
        fail "cannot scrape the key server metrics on 127.0.0.1:$1"
    awk '/^keyward_requests_total\{/ && !/opcode="ping"/ { s += $2 } END { print s + 0 }' <<<"$m"
}
# audit_ops FILE: audit log lines for key operations (pings left out).
audit_ops() {
    grep '"opcode":"' "$1" 2>/dev/null | grep -vc '"opcode":"ping"' || true
}
# load NAME COUNT OUTFILE: kw_hsload, full TLS 1.3 handshakes (no session cache, no tickets)
# through the proxy, each followed by GET / answered by the backend.
load() {
    "$KW_TESTS/kw_hsload" --connect "127.0.0.1:$PP" --ca "$PKI/site-ca.crt" --servername "$1" \
        --tls 1.3 --conns "$CONNS" --count "$2" --path / --timeout-ms 20000 >"$3" 2>&1
}
# hs_ok/hs_failed FILE: the numbers in kw_hsload's summary line.
hs_ok() { sed -n 's/^hsload: \([0-9]*\) ok.*/\1/p' "$1"; }
hs_failed() { sed -n 's/^hsload: [0-9]* ok, \([0-9]*\) failed.*/\1/p' "$1"; }

# Warm-up rounds until both key servers have answered (the spread is by in-flight and latency).
for _ in $(seq 1 20); do
    out=$KW_TMP/warm.out
    load "$SITE" 20 "$out" || fail "warm-up handshakes: $(cat "$out")"
    [ "$(ops "$MA")" -gt 0 ] && [ "$(ops "$MB")" -gt 0 ] && break
done
[ "$(ops "$MA")" -gt 0 ] && [ "$(ops "$MB")" -gt 0 ] ||
    fail "both key servers should take traffic: A=$(ops "$MA") B=$(ops "$MB")"
pass "warm-up: both key servers take traffic (A=$(ops "$MA") B=$(ops "$MB") ops)"

# 1. SIGKILL B in the middle of N handshakes.
a0=$(ops "$MA")
b0=$(ops "$MB")
OUT=$KW_TMP/run1.out
load "$SITE" "$N" "$OUT" &
LOAD=$!
KW_PIDS+=("$LOAD")
# Kill once this run has done 50 operations (10%: surely under way, B has work queued); the run
# must still be going at that moment, and B must have been taking part in it.
killed=0
for _ in $(seq 1 1000); do
    kill -0 "$LOAD" 2>/dev/null || break
    a_kill=$(ops "$MA")
    b_kill=$(ops "$MB")
    if [ $((a_kill - a0 + b_kill - b0)) -ge 50 ]; then
        kill -9 "$KSB"
        killed=1
        break
    fi
    sleep 0.02
done
[ "$killed" = 1 ] || fail "the run ended before 50 of its operations were seen, B not killed: $(cat "$OUT")"
{ wait "$KSB" || true; } 2>/dev/null
[ "$b_kill" -gt "$b0" ] || fail "B took none of the run's first $((a_kill - a0)) operations"
rc=0
wait "$LOAD" || rc=$?
cat "$OUT"
[ "$rc" = 0 ] || fail "the run reported failures (exit $rc): $(cat "$OUT")"
[ "$(hs_ok "$OUT")" = "$N" ] && [ "$(hs_failed "$OUT")" = 0 ] ||
    fail "expected $N ok, 0 failed: $(cat "$OUT")"
a1=$(ops "$MA")
after=$((a1 - a_kill))
[ "$after" -gt 0 ] || fail "no operation on A after B was killed: the kill came too late"
kill -0 "$PROXY_PID" || fail "the proxy died"
pass "$N full handshakes, key server B SIGKILLed mid-run after A $((a_kill - a0)) + B $((b_kill - b0)) ops, A did $after more: $(hs_ok "$OUT") ok, $(hs_failed "$OUT") failed"

# 2. Restart B on the same port (fresh metrics port and audit log, so its counts start at 0).
MB2=$(free_port)
start_keyserver ksb2 "$B" --metrics "127.0.0.1:$MB2" --audit-log "$KW_TMP/audit-b2.jsonl"
KSB=$KS_PID
wait_port "$MB2" 10 || fail "metrics of the restarted key server B not open"
# Handshakes in small rounds until B takes some (the health check's backoff is at most 5 s plus
# jitter; 30 s is only a bound against hanging, not a timing assertion).
total=0
failed=0
rounds=0
deadline=$((SECONDS + 30))
while [ "$(ops "$MB2")" -eq 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
    out=$KW_TMP/round.out
    load "$SITE" 20 "$out" || fail "handshakes after the restart failed: $(cat "$out")"
    total=$((total + $(hs_ok "$out")))
    failed=$((failed + $(hs_failed "$out")))
    rounds=$((rounds + 1))
    sleep 0.5
done
b_rejoin=$(ops "$MB2")
[ "$b_rejoin" -gt 0 ] || fail "restarted key server B got no traffic in 30 s ($total handshakes)"
pass "key server B restarted on port $B: rejoined after $rounds rounds of 20 handshakes ($total ok, $failed failed)"

# More handshakes now that B is back: both servers share them, again with no failure.
a2=$(ops "$MA")
OUT2=$KW_TMP/run2.out
load ecdsa-p256.example 200 "$OUT2" || fail "handshakes after B rejoined: $(cat "$OUT2")"
cat "$OUT2"
[ "$(hs_ok "$OUT2")" = 200 ] && [ "$(hs_failed "$OUT2")" = 0 ] || fail "after rejoin: $(cat "$OUT2")"
db=$(($(ops "$MB2") - b_rejoin))
da=$(($(ops "$MA") - a2))
[ "$db" -gt 0 ] || fail "restarted B took none of 200 handshakes (A took $da)"
pass "200 more handshakes: 0 failed; restarted B answered $db ops, A $da"

# The restarted server's audit log shows its traffic too (it is flushed at least every second).
for _ in $(seq 1 40); do
    [ "$(audit_ops "$KW_TMP/audit-b2.jsonl")" -ge "$(ops "$MB2")" ] && break
    sleep 0.1
done
lines=$(audit_ops "$KW_TMP/audit-b2.jsonl")
[ "$lines" -ge "$(ops "$MB2")" ] ||
    fail "restarted B's audit log has $lines operation lines, its metrics count $(ops "$MB2")"
grep '"opcode":"' "$KW_TMP/audit-b2.jsonl" | grep -v '"opcode":"ping"' | kw_grep -v '"result":"ok"' &&
    fail "restarted B's audit log shows failed operations: $(grep -v '"result":"ok"' "$KW_TMP/audit-b2.jsonl" | head -n 3)"
pass "restarted B's audit log: $lines operation lines, all ok (metrics: $(ops "$MB2"))"
kill -0 "$PROXY_PID" || fail "the proxy died"
