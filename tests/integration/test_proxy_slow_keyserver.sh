#!/bin/bash
# keyward-proxy with a key server that becomes slow (issue 14, item 2): behind kw_delay_relay,
# every reply of the only key server arrives 1.8 s late, with the default --keyserver-timeout-ms
# 5000 (so a try is 1666 ms). Each operation completes within the timeout, so every handshake
# must succeed (in about 1.8 s), and the one connection must not be torn down as "stalled".
# With a second, fast key server the client may hedge: handshakes then finish fast.
. "$(dirname "$0")/lib.sh"
proxy_remote_setup
KS=$(free_port)
start_keyserver ks "$KS"
RELAY=$(free_port)
start_bg relay "$KW_TESTS/kw_delay_relay" --listen "127.0.0.1:$RELAY" --upstream "127.0.0.1:$KS" \
    --delay-ms 0 --usr1-delay-ms 1800
RELAY_PID=$LAST_PID
wait_port "$RELAY" 10 || fail "kw_delay_relay did not start"
PP=$(free_port)
# shellcheck disable=SC2207
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" --cert "$PKI/certs/ecdsa-p256.crt" \
    $(proxy_ks_args "$RELAY") --threads 1
get() { # get PORT: one HTTPS request; prints the seconds it took
    OPENSSL_CONF=/dev/null curl -sS --max-time 20 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$1:127.0.0.1" -o /dev/null -w '%{time_total}' "https://localhost:$1/"
}
get "$PP" >/dev/null || fail "first request (fast key server)"
kill -USR1 "$RELAY_PID"
sleep 0.2
for i in 1 2 3 4; do
    t=$(get "$PP" 2>"$KW_TMP/curl.err") || fail "handshake $i with the key server 1.8 s away: $(cat "$KW_TMP/curl.err")"
    pass "handshake $i with the only key server 1.8 s away: ${t} s"
done
! grep -q "seems stalled" "$KW_TMP/proxy.log" ||
    fail "the only key server's connection was torn down: $(grep -m1 'seems stalled' "$KW_TMP/proxy.log")"
pass "the connection to the only (slow) key server was kept"

# The connection is lost and made again through the slow relay (TLS handshake and probe each
# take 1.8 s): it must come up, and handshakes work again.
kill "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null || true
start_bg relay2 "$KW_TESTS/kw_delay_relay" --listen "127.0.0.1:$RELAY" --upstream "127.0.0.1:$KS" \
    --delay-ms 1800
wait_port "$RELAY" 10 || fail "kw_delay_relay did not start again"
sleep 6 # the client reconnects by itself: TLS handshake 1.8 s, probe 1.8 s, backoff
for i in 1 2; do
    t=$(get "$PP" 2>"$KW_TMP/curl.err") || fail "handshake $i after reconnecting to the slow key server: $(cat "$KW_TMP/curl.err")"
    pass "handshake $i after reconnecting through the 1.8 s relay: ${t} s"
done

# Two key servers, one slow: hedging to the fast one is allowed, so handshakes stay fast.
KS2=$(free_port)
start_keyserver ks2 "$KS2"
PP2=$(free_port)
# shellcheck disable=SC2207
start_proxy proxy2 "$PP2" --backend "127.0.0.1:$BP" --cert "$PKI/certs/ecdsa-p256.crt" \
    $(proxy_ks_args "$RELAY" "$KS2") --threads 1
for i in 1 2 3 4; do
    t=$(get "$PP2" 2>"$KW_TMP/curl.err") || fail "handshake $i with a slow and a fast key server: $(cat "$KW_TMP/curl.err")"
    ms=$(awk -v t="$t" 'BEGIN{printf "%d", t * 1000}')
    [ "$ms" -lt 1900 ] || fail "handshake $i took $ms ms with a fast key server available"
done
pass "with a slow and a fast key server, handshakes stay under 1.9 s (hedged or sent to the fast one)"
