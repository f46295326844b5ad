#!/bin/bash
# Key server with many keys: start-up time, SIGHUP reload time, RSS and locked memory (the secure
# heap) with 10,000 and 100,000 ECDSA P-256 keys (each with a self-signed certificate, so the SNI
# index is built too).
#   bench/ks-many-keys.sh [BUILD_DIR]        (default: build; not a CTest test)
# Keys are generated once by bench/tools/ks_genkeys.py (python3-cryptography, ~5 ms a key on a
# busy 2-vCPU VM) into KW_BENCH_KEYS_CACHE (default /var/tmp/keyward-many-keys) and reused.
# Start-up: from exec to the port accepting; reload: from SIGHUP to the "reloaded" line. The key
# server runs with its defaults (--log-level info: one line per key loaded, as operators run it).
# Environment: KW_BENCH_COUNTS (default "10000 100000").
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
KS=$BUILD/bin/keyward-keyserver
[ -x "$KS" ] || {
    echo "bench: build first (need $KS)" >&2
    exit 1
}
COUNTS=${KW_BENCH_COUNTS:-10000 100000}
CACHE=${KW_BENCH_KEYS_CACHE:-/var/tmp/keyward-many-keys}
MAX=${COUNTS##* }
TMP=$(mktemp -d /tmp/kwkeys.XXXXXX)
KS_PID=
cleanup() {
    [ -n "$KS_PID" ] && kill "$KS_PID" 2>/dev/null && wait "$KS_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "bench: $MAX keys in $CACHE/all (generated once)..." >&2
python3 "$SRC/bench/tools/ks_genkeys.py" "$CACHE/all" "$MAX"
sh "$SRC/scripts/make-pki.sh" "$TMP/pki" >/dev/null
PKI=$TMP/pki
now_ms() { date +%s%3N; }
status() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$KS_PID/status"; }

declare -A START RELOAD RSS RSS2 LCK
for n in $COUNTS; do
    dir=$CACHE/n$n
    if [ ! -d "$dir" ] || [ "$(find "$dir" -name '*.key' | wc -l)" != "$n" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        (cd "$CACHE/all" && ls | grep -E "\.(key|crt)$" | sort | sed -n "1,$((2 * n))p" |
            sed "s|^|$CACHE/all/|" | xargs ln -s -t "$dir")
    fi
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    t0=$(now_ms)
    "$KS" --listen "127.0.0.1:$PORT" --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" \
        --ca "$PKI/ca.crt" --keys "$dir" --allow-all >"$TMP/ks.$n.log" 2>&1 &
    KS_PID=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
        kill -0 "$KS_PID" 2>/dev/null || {
            echo "bench: key server with $n keys exited: $(tail -3 "$TMP/ks.$n.log")" >&2
            exit 1
        }
        sleep 0.02
    done
    t1=$(now_ms)
    START[$n]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1000}')
    RSS[$n]=$(status VmRSS)
    LCK[$n]=$(status VmLck)
    t0=$(now_ms)
    kill -HUP "$KS_PID"
    until grep -q "reloaded\|reload failed" "$TMP/ks.$n.log"; do sleep 0.02; done
    t1=$(now_ms)
    grep -q "reload failed" "$TMP/ks.$n.log" && echo "bench: reload with $n keys failed" >&2
    RELOAD[$n]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1000}')
    sleep 0.5
    RSS2[$n]=$(status VmRSS)
    grep "secure heap\|refused" "$TMP/ks.$n.log" | head -3 >&2 || true
    echo "bench: $n keys: start ${START[$n]} s, RSS ${RSS[$n]} KiB (locked ${LCK[$n]}), reload ${RELOAD[$n]} s, RSS after ${RSS2[$n]} KiB" >&2
    kill "$KS_PID"
    wait "$KS_PID" 2>/dev/null || true
    KS_PID=
done

echo
echo "keyward-keyserver with many ECDSA P-256 keys (with certificates); $(date -u +%Y-%m-%d)," \
    "$(nproc) vCPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| keys | start-up s | RSS MiB | KiB per key | locked (secure heap) MiB | SIGHUP reload s | RSS after reload MiB |"
echo "|---|---|---|---|---|---|---|"
for n in $COUNTS; do
    awk -v n="$n" -v s="${START[$n]}" -v r="${RSS[$n]}" -v l="${LCK[$n]}" -v h="${RELOAD[$n]}" \
        -v r2="${RSS2[$n]}" 'BEGIN {printf "| %d | %s | %.1f | %.1f | %.1f | %s | %.1f |\n",
        n, s, r / 1024, r / n, l / 1024, h, r2 / 1024}'
done
