#!/bin/bash
# Key server memory per idle mTLS connection: RSS delta / connections with 5,000 and 20,000 held.
#   bench/ks-memory.sh [BUILD_DIR]        (default: build; not a CTest test)
# Starts keyward-keyserver on loopback with a fresh test PKI, measures its RSS (VmRSS) after one
# warm-up connection, then opens connections with tests/integration/tools/kw_hold.py (several processes, one
# ping answered on each, then idle) up to 5,000 and then 20,000, waits KW_BENCH_SETTLE seconds
# (default 3: longer than the server's buffer-release delay) and reads the RSS again. Only the key
# server's RSS counts; the holders' memory is not measured. Raises RLIMIT_NOFILE (needs root or a
# hard limit above 20,064; in a container without CAP_SYS_RESOURCE whose hard limit is 20,000,
# use KW_BENCH_COUNTS="5000 19900"). Environment: KW_BENCH_COUNTS (default "5000 20000"), KW_BENCH_HOLDERS
# (processes, default 8), KW_BENCH_KS_ARGS (extra key server options).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
KS=$BUILD/bin/keyward-keyserver
[ -x "$KS" ] || {
    echo "bench: build first (need $KS)" >&2
    exit 1
}
COUNTS=${KW_BENCH_COUNTS:-5000 20000}
HOLDERS=${KW_BENCH_HOLDERS:-8}
SETTLE=${KW_BENCH_SETTLE:-3}
MAX=${COUNTS##* }
NOFILE=$((MAX + 64))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$NOFILE" ]; then
    ulimit -Hn "$NOFILE" 2>/dev/null || {
        echo "bench: cannot raise RLIMIT_NOFILE to $NOFILE (run as root)" >&2
        exit 1
    }
fi
ulimit -Sn "$NOFILE"

TMP=$(mktemp -d /tmp/kwmem.XXXXXX)
KS_PID=
HOLD_PIDS=()
cleanup() {
    for p in "${HOLD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$KS_PID" ] && kill "$KS_PID" 2>/dev/null && wait "$KS_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

sh "$SRC/scripts/make-pki.sh" "$TMP/pki" >/dev/null
PKI=$TMP/pki
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
# shellcheck disable=SC2086
"$KS" --listen "127.0.0.1:$PORT" --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" \
    --ca "$PKI/ca.crt" --keys "$PKI/keys" --idle-timeout-ms 3600000 --max-connections 0 \
    --handshake-timeout-ms 120000 \
    --max-handshakes 100000 --max-handshakes-per-ip 100000 --log-level warn \
    ${KW_BENCH_KS_ARGS:-} >"$TMP/ks.log" 2>&1 &
KS_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$KS_PID/status"; }

# n connections in $HOLDERS processes; returns once all are held (each holder prints "held").
hold() {
    local n=$1 per i fifo
    per=$(((n + HOLDERS - 1) / HOLDERS))
    for ((i = 0; i < HOLDERS && n > 0; i++)); do
        [ "$per" -gt "$n" ] && per=$n
        fifo=$TMP/hold.${#HOLD_PIDS[@]}
        mkfifo "$fifo.in"
        python3 "$SRC/tests/integration/tools/kw_hold.py" 127.0.0.1 "$PORT" "$PKI/edge.crt" "$PKI/edge.key" \
            "$PKI/ca.crt" "$per" <"$fifo.in" >"$fifo.out" &
        HOLD_PIDS+=($!)
        exec {fd}>"$fifo.in" # keeps the holder's stdin open
        n=$((n - per))
    done
    for i in "${!HOLD_PIDS[@]}"; do
        while ! grep -q '^held' "$TMP/hold.$i.out" 2>/dev/null; do
            kill -0 "${HOLD_PIDS[$i]}" 2>/dev/null || {
                echo "bench: holder $i failed" >&2
                exit 1
            }
            sleep 0.2
        done
    done
}

hold 1 # warm-up: the first connection's one-off allocations (session cache, OpenSSL tables)
sleep "$SETTLE"
BASE=$(rss)
HELD=1
echo "bench: key server RSS ${BASE} KiB with 1 connection" >&2
declare -A RES
for n in $COUNTS; do
    hold $((n - HELD + 1))
    HELD=$((n + 1))
    sleep "$SETTLE"
    now=$(rss)
    RES[$n]=$(awk -v a="$now" -v b="$BASE" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}')
    echo "bench: $n more connections held: RSS $now KiB, ${RES[$n]} KiB each" >&2
done
echo
echo "keyward-keyserver memory per idle mTLS connection (RSS delta / connections, the holders'"
echo "memory not counted); $(date -u +%Y-%m-%d), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| held connections | KiB per connection | goal |"
echo "|---|---|---|"
for n in $COUNTS; do
    echo "| $n | ${RES[$n]} | ≤ 16 |"
done
