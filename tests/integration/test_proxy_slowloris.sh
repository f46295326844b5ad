#!/bin/bash
# keyward-proxy against slow and idle clients: connections that send nothing, or only part of a
# ClientHello, are cut at --handshake-timeout-ms while the proxy keeps serving others;
# established but idle tunnels are closed after --idle-timeout-ms; --max-connections holds.
. "$(dirname "$0")/lib.sh"
HS_MS=1000
proxy_setup
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 2 \
    --handshake-timeout-ms "$HS_MS" --idle-timeout-ms 1500
MAIN_PROXY_PID=$PROXY_PID

"$KW_TESTS/kw_slow" --connect "127.0.0.1:$PP" --conns 100 --mode idle --min-ms 900 \
    --max-ms 3000 >"$KW_TMP/idle.out" 2>&1 &
IDLE=$!
"$KW_TESTS/kw_slow" --connect "127.0.0.1:$PP" --conns 100 --mode partial --min-ms 900 \
    --max-ms 3000 >"$KW_TMP/partial.out" 2>&1 &
PARTIAL=$!
sleep 0.3
t0=$(date +%s%N)
for i in 1 2 3 4 5; do
    curl -sS --max-time 5 --cacert "$PKI/site-ca.crt" "https://localhost:$PP/during-$i" |
        grep -q "path=/during-$i" || fail "request $i while 200 slow clients hang on"
done
ms=$((($(date +%s%N) - t0) / 1000000))
pass "5 requests served in $ms ms while 200 slowloris connections were open"
wait "$IDLE" || fail "idle clients: $(cat "$KW_TMP/idle.out")"
pass "$(cat "$KW_TMP/idle.out")"
wait "$PARTIAL" || fail "partial ClientHello clients: $(cat "$KW_TMP/partial.out")"
pass "$(cat "$KW_TMP/partial.out")"

# An established tunnel with no traffic is closed after --idle-timeout-ms (1500).
t0=$(date +%s%N)
openssl s_client -connect "127.0.0.1:$PP" -servername localhost -CAfile "$PKI/site-ca.crt" \
    < <(sleep 6) >"$KW_TMP/idle-tls.out" 2>&1 || true
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "Verify return code: 0" "$KW_TMP/idle-tls.out" || fail "idle TLS client did not connect"
[ "$ms" -ge 1400 ] && [ "$ms" -lt 5000 ] || fail "idle tunnel closed after $ms ms (want ~1500)"
pass "an idle established tunnel was closed after $ms ms (--idle-timeout-ms 1500)"

# --max-connections: with the limit taken by idle clients, new ones are turned away, then served
# again once the handshake timeout has cleared them.
LP=$(free_port)
start_proxy proxy-limit "$LP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 1 \
    --handshake-timeout-ms "$HS_MS" --max-connections 5
"$KW_TESTS/kw_slow" --connect "127.0.0.1:$LP" --conns 5 --mode idle --min-ms 900 --max-ms 3000 \
    >"$KW_TMP/limit.out" 2>&1 &
HOLD=$!
sleep 0.3
rc=0
curl -sS --max-time 5 --cacert "$PKI/site-ca.crt" "https://localhost:$LP/over" >/dev/null 2>&1 ||
    rc=$?
[ "$rc" != 0 ] || fail "a 6th connection was served despite --max-connections 5"
wait "$HOLD" || fail "held connections: $(cat "$KW_TMP/limit.out")"
curl -sS --max-time 5 --cacert "$PKI/site-ca.crt" "https://localhost:$LP/again" |
    grep -q "path=/again" || fail "not served after the held connections were cut"
pass "--max-connections 5: a 6th client is refused (curl exit $rc), served once slots free up"

kill "$MAIN_PROXY_PID"
wait "$MAIN_PROXY_PID" 2>/dev/null || true
grep -q "stopped:" "$KW_TMP/proxy.log" || fail "proxy did not stop cleanly"
timeouts=$(sed -n 's/.* \([0-9]*\) timed out.*/\1/p' "$KW_TMP/proxy.log")
[ "${timeouts:-0}" -ge 200 ] || fail "only ${timeouts:-0} handshake timeouts counted"
pass "proxy counted $timeouts handshake timeouts and stopped cleanly"
