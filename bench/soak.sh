#!/bin/bash
# Soak: MINUTES of mixed full TLS handshakes (RSA and ECDSA certificates, TLS 1.2 and 1.3, each
# with one HTTP request) through keyward-proxy, whose keys live on two key servers
# (--keyserver twice); the first key server is restarted (SIGTERM, start again on the same port)
# in the middle of every minute. Reports handshakes done and failed, and each key server's RSS
# at start and end (the restarted one: at each start and before each stop).
# Usage: bench/soak.sh [BUILD_DIR] [MINUTES=10]   (not a CTest test; KW_SOAK_CLIENTS=2 loops)
set -euo pipefail
. "$(dirname "$0")/lib-proxy.sh"
bench_init bench/soak.sh "${1:-}" curl
MINUTES=${2:-10}
CLIENTS=${KW_SOAK_CLIENTS:-2}
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }

BP=$(port); KS1=$(port); KS2=$(port); PP=$(port)

start_bg backend "$BUILD/tests/kw_backend" --listen "127.0.0.1:$BP" --name soak
start_ks "$KS1" ks1
KS1_PID=$KS_PID
start_ks "$KS2" ks2
KS2_PID=$KS_PID
wait_port "$BP"
start_proxy "$PP" "$BP" --keyserver "127.0.0.1:$KS1" --keyserver "127.0.0.1:$KS2" --threads 2
wait_port "$PP"
sleep 0.5 # let the proxy's key-server connections settle before measuring

KS1_RSS0=$(rss "$KS1_PID")
KS2_RSS0=$(rss "$KS2_PID")
PROXY_RSS0=$(rss "$PROXY_PID")
START=$(date +%s)
END=$((START + MINUTES * 60))

# client N: mixed handshakes until END; writes "done N failed M" to $TMP/client.N.
client() {
    local n=$1 done=0 failed=0 i=0 site tls args
    while [ "$(date +%s)" -lt "$END" ]; do
        case $((i % 4)) in
        0) site=rsa2048 tls=1.2 args=(--ciphers ECDHE-RSA-AES128-GCM-SHA256) ;;
        1) site=rsa2048 tls=1.3 args=() ;;
        2) site=ecdsa-p256 tls=1.2 args=() ;;
        3) site=ecdsa-p256 tls=1.3 args=() ;;
        esac
        # every 8th RSA TLS 1.2 handshake uses RSA key exchange (a decrypt on the key server)
        [ $((i % 32)) = 0 ] && args=(--ciphers AES128-GCM-SHA256)
        if curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
            --resolve "$site.example:$PP:127.0.0.1" --tlsv"$tls" --tls-max "$tls" "${args[@]}" \
            -o /dev/null "https://$site.example:$PP/soak$n" 2>>"$TMP/client.$n.err"; then
            done=$((done + 1))
        else
            failed=$((failed + 1))
            echo "$(date +%T) $site TLS $tls failed" >>"$TMP/client.$n.err"
        fi
        i=$((i + 1))
    done
    echo "done $done failed $failed" >"$TMP/client.$n"
}
CPIDS=()
for n in $(seq "$CLIENTS"); do
    client "$n" &
    CPIDS+=($!)
    PIDS+=($!)
done

echo "soak: $MINUTES min, $CLIENTS client loops, proxy -> key servers :$KS1 (restarted each minute) and :$KS2"
RESTARTS=()
m=0
while [ "$m" -lt "$MINUTES" ]; do
    at=$((START + m * 60 + 30))
    now=$(date +%s)
    [ "$now" -lt "$at" ] && sleep $((at - now))
    before=$(rss "$KS1_PID")
    kill -TERM "$KS1_PID"
    wait "$KS1_PID" 2>/dev/null || true
    start_ks "$KS1" ks1
    KS1_PID=$KS_PID
    sleep 0.5
    RESTARTS+=("minute $((m + 1)): ks1 RSS ${before} KiB before SIGTERM, $(rss "$KS1_PID") KiB after restart")
    echo "  ${RESTARTS[-1]}; ks2 RSS $(rss "$KS2_PID") KiB"
    m=$((m + 1))
done
for p in "${CPIDS[@]}"; do wait "$p" || true; done

DONE=0 FAILED=0
for n in $(seq "$CLIENTS"); do
    read -r _ d _ f <"$TMP/client.$n"
    DONE=$((DONE + d))
    FAILED=$((FAILED + f))
done
SECS=$(($(date +%s) - START))
echo
echo "| measure | value |"
echo "|---|---|"
echo "| duration | ${SECS} s, $CLIENTS client loops (curl), ks1 restarted ${#RESTARTS[@]} times |"
echo "| handshakes done | $DONE ($((DONE / (SECS > 0 ? SECS : 1))) /s) |"
echo "| handshakes failed | $FAILED |"
echo "| ks2 (never restarted) RSS start -> end | $KS2_RSS0 -> $(rss "$KS2_PID") KiB |"
echo "| ks1 (restarted) RSS first start -> end | $KS1_RSS0 -> $(rss "$KS1_PID") KiB |"
echo "| keyward-proxy RSS start -> end | $PROXY_RSS0 -> $(rss "$PROXY_PID") KiB |"
if [ "$FAILED" -gt 0 ]; then
    echo
    echo "first failures:"
    cat "$TMP"/client.*.err | grep -v '^$' | head -n 10
fi
kill -0 "$PROXY_PID" 2>/dev/null || { echo "keyward-proxy died" >&2; exit 1; }
[ "$FAILED" = 0 ]
