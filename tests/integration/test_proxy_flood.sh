#!/bin/bash
# keyward-proxy against TLS-level floods (issue 14, item 1): two TLS 1.3 clients send KeyUpdate
# (update_requested) in a loop for 10 s and never read. The proxy must close them (it caps the
# TLS messages that carry no application data), keep its memory within a few MiB, and keep
# serving other clients' handshakes on the same thread in under a second.
. "$(dirname "$0")/lib.sh"
proxy_setup
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 1

# curl_time: seconds from start to the end of the TLS handshake, for one request.
curl_time() {
    OPENSSL_CONF=/dev/null curl -sS --max-time 15 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$PP:127.0.0.1" -o /dev/null -w '%{time_appconnect}' \
        "https://localhost:$PP/"
}
rss() { awk '/VmRSS/{print $2}' /proc/"$PROXY_PID"/status; }
for _ in 1 2 3; do curl_time >/dev/null || fail "warm-up request"; done
rss0=$(rss)

SECS=10
for i in 1 2; do
    "$KW_TESTS/kw_tlsflood" --connect "127.0.0.1:$PP" --seconds "$SECS" >"$KW_TMP/flood$i.out" \
        2>&1 &
    eval "FLOOD$i=\$!"
done
worst=0
peak=$rss0
for _ in $(seq 1 $((SECS - 1))); do
    sleep 1
    t=$(curl_time 2>"$KW_TMP/curl.err") || fail "a request during the flood failed: $(cat "$KW_TMP/curl.err")"
    ms=$(awk -v t="$t" 'BEGIN{printf "%d", t * 1000}')
    [ "$ms" -gt "$worst" ] && worst=$ms
    r=$(rss)
    [ "$r" -gt "$peak" ] && peak=$r
done
wait "$FLOOD1" "$FLOOD2"
r=$(rss)
[ "$r" -gt "$peak" ] && peak=$r
echo "flooder 1: $(cat "$KW_TMP/flood1.out"); flooder 2: $(cat "$KW_TMP/flood2.out")"
grow=$((peak - rss0))
echo "RSS $rss0 KiB before, peak $peak KiB during the flood (+$grow KiB); slowest handshake $worst ms"
[ "$worst" -lt 1000 ] || fail "a handshake took $worst ms during the KeyUpdate flood"
pass "handshakes during the flood: slowest $worst ms"
if [ "${KW_SANITIZE:-OFF}" != ON ]; then # ASan's quarantine keeps freed memory: RSS says nothing
    [ "$grow" -lt 6144 ] || fail "the proxy grew by $grow KiB during the KeyUpdate flood"
    pass "proxy memory grew by $grow KiB (peak) under two KeyUpdate flooders for $SECS s"
fi
for i in 1 2; do
    closed=$(sed -n 's/.*closed=\([0-9]*\).*/\1/p' "$KW_TMP/flood$i.out")
    [ "${closed:-0}" -ge 1 ] || fail "flooder $i was never closed by the proxy"
done
pass "the proxy closed the flooding connections"
kw_stop "$PROXY_PID" || fail "proxy did not stop cleanly"
grep -q "stopped:" "$KW_TMP/proxy.log" || fail "no counters at stop"
pass "$(grep -o 'stopped:.*' "$KW_TMP/proxy.log")"
