#!/bin/bash
# keyward-proxy's stops (issue 14, item 7), nginx's convention:
# * SIGQUIT drains: the listener closes at once (new clients are refused) while a 50 MB download
#   in progress completes, then the proxy exits 0 with nothing cut;
# * --drain-timeout-ms bounds the drain: a download too slow for it is cut and counted;
# * SIGTERM stops at once and its counters are truthful: handshakes waiting on a stalled key
#   server when it came are reported as cut, not hidden behind "0 failed".
. "$(dirname "$0")/lib.sh"
proxy_setup
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# download PORT RATE OUT: a 50 MB GET through the proxy at RATE, in the background; sets DL.
download() {
    OPENSSL_CONF=/dev/null curl -sS --max-time 60 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$1:127.0.0.1" --limit-rate "$2" -o /dev/null \
        -w '%{size_download}' "https://localhost:$1/bytes/50000000" >"$3" 2>&1 &
    DL=$!
}
# wait_exit PID SECONDS: waits for PID to exit; returns its status (124 when it did not).
wait_exit() {
    local pid=$1 tries=$(($2 * 20)) rc=0
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -gt 0 ]; do
        sleep 0.05
        tries=$((tries - 1))
    done
    kill -0 "$pid" 2>/dev/null && return 124
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}

# 1. SIGQUIT: the download in progress (≈2.5 s at 20 MB/s) completes, new clients are refused.
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 2
download "$PP" 20M "$KW_TMP/dl1.out"
sleep 0.7
kill -QUIT "$PROXY_PID"
sleep 0.3
rc=0
OPENSSL_CONF=/dev/null curl -sS --max-time 5 --cacert "$PKI/site-ca.crt" \
    --resolve "localhost:$PP:127.0.0.1" -o /dev/null "https://localhost:$PP/" 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "SIGQUIT: a new client was still served while draining"
kill -0 "$PROXY_PID" 2>/dev/null || fail "SIGQUIT: the proxy exited with a download in progress"
wait "$DL" || fail "SIGQUIT: the download in progress failed: $(cat "$KW_TMP/dl1.out")"
[ "$(cat "$KW_TMP/dl1.out")" = 50000000 ] ||
    fail "SIGQUIT: the download got $(cat "$KW_TMP/dl1.out") bytes, not 50000000"
t0=$(now_ms)
wait_exit "$PROXY_PID" 10 || fail "SIGQUIT: the proxy did not exit 0 after the drain (rc $?)"
ms=$(($(now_ms) - t0))
grep -q "cut by the stop: 0 handshakes, 0 tunnels" "$KW_TMP/proxy.log" ||
    fail "SIGQUIT: counters: $(grep -o 'stopped:.*' "$KW_TMP/proxy.log")"
pass "SIGQUIT: new client refused (curl exit $rc), the 50 MB download completed, the proxy exited $ms ms after it"

# 2. --drain-timeout-ms 1000: a download that needs ≈10 s is cut after about a second.
PP=$(free_port)
start_proxy proxy-drain "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 1 \
    --drain-timeout-ms 1000
download "$PP" 5M "$KW_TMP/dl2.out"
sleep 0.5
t0=$(now_ms)
kill -QUIT "$PROXY_PID"
wait_exit "$PROXY_PID" 10 || fail "drain timeout: the proxy did not exit 0 (rc $?)"
ms=$(($(now_ms) - t0))
[ "$ms" -ge 900 ] && [ "$ms" -lt 4000 ] || fail "drain timeout: exited after $ms ms (want ~1000)"
rc=0
wait "$DL" || rc=$?
[ "$rc" != 0 ] || fail "drain timeout: the slow download was not cut"
grep -q "cut by the stop: 0 handshakes, 1 tunnels" "$KW_TMP/proxy-drain.log" ||
    fail "drain timeout: counters: $(grep -o 'stopped:.*' "$KW_TMP/proxy-drain.log")"
pass "--drain-timeout-ms 1000: exited after $ms ms, the slow download cut (curl exit $rc) and counted"

# 3. SIGTERM with 10 handshakes waiting on a stalled key server (SIGSTOP): reported as cut.
if proxy_remote_ok; then
    PP=$(free_port)
    start_proxy proxy-term "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 1 \
        --keyserver-timeout-ms 4000
    kill -STOP "$KS_PID"
    for i in $(seq 1 10); do
        OPENSSL_CONF=/dev/null curl -sS --max-time 15 --cacert "$PKI/site-ca.crt" \
            --resolve "localhost:$PP:127.0.0.1" -o /dev/null "https://localhost:$PP/$i" \
            >/dev/null 2>&1 &
    done
    sleep 1
    kill -TERM "$PROXY_PID"
    sleep 0.5
    kill -CONT "$KS_PID"
    wait_exit "$PROXY_PID" 15 || fail "SIGTERM: the proxy did not exit 0 (rc $?)"
    line=$(grep -o 'stopped:.*' "$KW_TMP/proxy-term.log")
    grep -q "cut by the stop: 10 handshakes, 0 tunnels" <<<"$line" || fail "SIGTERM: counters: $line"
    pass "SIGTERM with 10 handshakes waiting on the key server: $line"
fi
