#!/bin/bash
# Prometheus metrics: a key server with --metrics; curl /metrics before and after a known number of
# operations (ECDSA signs, pings, unknown-key errors) and the counters and histogram counts move by
# exactly that many; keys loaded, certificate expiry (checked against openssl), connections while a
# client is connected, in-flight back to 0, worker busy time, the reload counter after SIGHUP, and
# 404 for other paths.
. "$(dirname "$0")/lib.sh"

make_pki
KS_PORT=$(free_port)
M_PORT=$(free_port)
start_keyserver ks "$KS_PORT" --metrics "127.0.0.1:$M_PORT" --workers 2
wait_port "$M_PORT" 10 || fail "metrics port not open"
URL="http://127.0.0.1:$M_PORT/metrics"

scrape() { curl -fsS "$URL" >"$KW_TMP/m.txt" || fail "curl $URL"; }
# metric NAME{LABELS}: its value in the last scrape (0 when absent).
metric() {
    awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$KW_TMP/m.txt"
}

scrape
grep -q "^# TYPE keyward_requests_total counter" "$KW_TMP/m.txt" || fail "no requests_total TYPE"
ct=$(curl -fsS -o /dev/null -w '%{content_type}' "$URL")
[[ $ct == text/plain* ]] || fail "content type $ct"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$M_PORT/")
[ "$code" = 404 ] || fail "/ answered $code, not 404"
pass "GET /metrics is Prometheus text; other paths 404"

[ "$(metric keyward_keys_loaded)" = 7 ] || fail "keys_loaded $(metric keyward_keys_loaded)"
want=$(date -d "$(openssl x509 -in "$PKI/keys/rsa2048.crt" -noout -enddate | cut -d= -f2)" +%s)
got=$(metric 'keyward_certificate_expiry_timestamp_seconds{key="rsa2048"}')
[ "$got" = "$want" ] || fail "certificate expiry $got, openssl says $want"
pass "keys_loaded 7, rsa2048 certificate expiry $got matches openssl"

S_OK='keyward_requests_total{opcode="ecdsa-sha256",result="ok"}'
S_NF='keyward_requests_total{opcode="ecdsa-sha256",result="key-not-found"}'
S_PING='keyward_requests_total{opcode="ping",result="ok"}'
H_CNT='keyward_request_duration_seconds_count{opcode="ecdsa-sha256"}'
H_INF='keyward_request_duration_seconds_bucket{opcode="ecdsa-sha256",le="+Inf"}'
ok0=$(metric "$S_OK")
nf0=$(metric "$S_NF")
ping0=$(metric "$S_PING")
cnt0=$(metric "$H_CNT")
acc0=$(metric keyward_connections_accepted_total)

N=37
RAW=("$KW_TESTS/kw_rawclient" --server "127.0.0.1:$KS_PORT" --cert "$PKI/edge.crt"
    --key "$PKI/edge.key" --ca "$PKI/ca.crt")
D=$(head -c 32 /dev/urandom | xxd -p | tr -d '\n')
"${RAW[@]}" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-hex "$D" --count "$N" \
    --inflight 8 >/dev/null || fail "$N ECDSA signs"
"${RAW[@]}" --op 0x15 --key-digest "$(printf '%064d' 0)" --payload-hex "$D" --count 3 \
    --expect-error 2 >/dev/null || fail "3 unknown-key requests"
"${RAW[@]}" --op ping --payload-hex 6869 --count 5 >/dev/null || fail "5 pings"
scrape
[ $(($(metric "$S_OK") - ok0)) = "$N" ] || fail "ecdsa ok moved by $(($(metric "$S_OK") - ok0)), not $N"
[ $(($(metric "$S_NF") - nf0)) = 3 ] || fail "key-not-found moved by $(($(metric "$S_NF") - nf0))"
[ $(($(metric "$S_PING") - ping0)) = 5 ] || fail "ping moved by $(($(metric "$S_PING") - ping0))"
[ $(($(metric "$H_CNT") - cnt0)) = $((N + 3)) ] || fail "histogram count did not move by $((N + 3))"
[ "$(metric "$H_INF")" = "$(metric "$H_CNT")" ] || fail "+Inf bucket differs from count"
[ $(($(metric keyward_connections_accepted_total) - acc0)) = 3 ] || fail "connections accepted"
[ "$(metric keyward_inflight)" = 0 ] || fail "inflight $(metric keyward_inflight) at rest"
awk '$1 == "keyward_worker_busy_seconds_total" && $2 > 0 { f = 1 } END { exit !f }' \
    "$KW_TMP/m.txt" || fail "worker busy time did not move"
pass "after $N signs, 3 unknown keys, 5 pings: counters moved by exactly that"

# connections gauge: one client held open.
start_session sess "$KS_PORT"
scrape
[ "$(metric keyward_connections)" = 1 ] || fail "connections $(metric keyward_connections) with one client"
echo quit >&"$SESS_IN"
wait "$SESS_PID" 2>/dev/null || true
tries=40
while scrape && [ "$(metric keyward_connections)" != 0 ] && [ $tries -gt 0 ]; do
    sleep 0.05
    tries=$((tries - 1))
done
[ "$(metric keyward_connections)" = 0 ] || fail "connections did not go back to 0"
pass "connections gauge follows a client (1, then 0)"

r0=$(metric 'keyward_reloads_total{result="ok"}')
kill -HUP "$KS_PID"
tries=100
while scrape && [ "$(metric 'keyward_reloads_total{result="ok"}')" = "$r0" ] && [ $tries -gt 0 ]; do
    sleep 0.05
    tries=$((tries - 1))
done
[ "$(metric 'keyward_reloads_total{result="ok"}')" = $((r0 + 1)) ] || fail "reload not counted"
pass "SIGHUP counted in keyward_reloads_total"

# --request-timeout-ms: with one worker and 40 RSA-4096 signs queued at once, the ones that waited
# longer than 50 ms are answered 0x08 without being run (load shedding), the first ones are served.
KS2_PORT=$(free_port)
M2_PORT=$(free_port)
start_keyserver ks2 "$KS2_PORT" --metrics "127.0.0.1:$M2_PORT" --workers 1 --request-timeout-ms 50
URL="http://127.0.0.1:$M2_PORT/metrics"
D=$(head -c 32 /dev/urandom | xxd -p | tr -d '\n')
"${RAW[@]/$KS_PORT/$KS2_PORT}" --op 0x05 --key-cert "$PKI/certs/rsa4096.crt" --payload-hex "$D" \
    --count 40 --inflight 40 >/dev/null 2>&1 || true
scrape
ok=$(metric 'keyward_requests_total{opcode="rsa-pkcs1-sha256",result="ok"}')
shed=$(metric 'keyward_requests_total{opcode="rsa-pkcs1-sha256",result="internal"}')
[ $((ok + shed)) = 40 ] || fail "request timeout: $ok ok + $shed shed != 40"
[ "$ok" -ge 1 ] && [ "$shed" -ge 1 ] || fail "request timeout: $ok ok, $shed shed (expected both)"
pass "--request-timeout-ms 50 with one worker: $ok served, $shed shed unrun (0x08)"
