#!/bin/bash
# keyward-proxy's memory after a burst of waiting handshakes (issue 14, item 6): 500 handshakes
# park on a stalled key server (SIGSTOP) and their clients hang up; once the key operations have
# ended (the key server resumes), the proxy must give back most of what the burst took, instead
# of keeping OpenSSL's pool of paused ASYNC jobs (a 32 KiB fibre stack each) at its peak.
# Also prints the memory per waiting handshake (docs/proxy.md).
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || { echo "skip: keyward.so not built"; exit 0; }
[ "${KW_SANITIZE:-OFF}" != ON ] || { echo "skip: RSS is meaningless under ASan"; exit 0; }
BP=$(free_port)
start_backend backend "$BP"
KS=$(free_port)
start_keyserver ks "$KS"
PP=$(free_port)
# shellcheck disable=SC2207
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" --cert "$PKI/certs/ecdsa-p256.crt" \
    $(proxy_ks_args "$KS") --threads 1 --keyserver-timeout-ms 3000
rss() { awk '/VmRSS/{print $2}' /proc/"$PROXY_PID"/status; }
load() {
    "$KW_TESTS/kw_hsload" --connect "127.0.0.1:$PP" --ca "$PKI/site-ca.crt" \
        --servername localhost "$@" >>"$KW_TMP/load.out" 2>&1 || true
}
load --conns 20 --count 200 # warm-up: TLS contexts, key-server connections, malloc arenas
sleep 0.5
rss0=$(rss)
N=500
kill -STOP "$KS_PID"
load --conns $N --count $N --timeout-ms 2000 --max-fail $N &
LOAD=$!
peak=$rss0
for _ in $(seq 1 30); do
    sleep 0.1
    r=$(rss)
    [ "$r" -gt "$peak" ] && peak=$r
done
wait "$LOAD"
kill -CONT "$KS_PID"
sleep 4 # the key operations end (answered or timed out) and the paused jobs finish
load --conns 1 --count 1 # one handshake after the burst: the proxy still works
after=$(rss)
per=$(((peak - rss0) * 1024 / N))
kept=$((after - rss0))
echo "RSS $rss0 KiB before, $peak KiB with $N waiting handshakes (~$per bytes each), $after KiB after"
grep -q "1 ok" <(tail -1 "$KW_TMP/load.out") || grep -q "ok=1\|^1 " <(tail -1 "$KW_TMP/load.out") ||
    echo "note: $(tail -1 "$KW_TMP/load.out")"
[ $((peak - rss0)) -gt 4096 ] || fail "the burst did not grow the proxy (+$((peak - rss0)) KiB): no burst?"
[ "$kept" -lt $(((peak - rss0) / 3)) ] ||
    fail "after the burst the proxy kept $kept of $((peak - rss0)) KiB"
pass "after $N waiting handshakes: +$((peak - rss0)) KiB at the peak (~$((per / 1024)) KiB each), +$kept KiB kept"
