#!/bin/bash
# Key server with many keys: start-up time, SIGHUP reload time, RSS and locked memory (the secure
# heap) with 10,000 and 100,000 ECDSA P-256 keys (each with a self-signed certificate, so the SNI
# index is built too), and the key server's secure-heap warnings.
#   bench/ks-many-keys.sh [BUILD_DIR]        (default: build; not a CTest test)
# Keys are generated once by bench/tools/ks_genkeys.py (python3-cryptography; KW_BENCH_GEN
# processes in parallel, default 2) into KW_BENCH_KEYS_CACHE (default /var/tmp/keyward-many-keys)
# and reused. Start-up: from exec to the port accepting (keys are loaded before the listener
# opens); reload: from SIGHUP to the "reloaded" line. The key server runs with its defaults
# (--log-level info: one line per key loaded, as operators run it). Next to each time, the key
# server's CPU time (user + system, all threads), which a busy machine inflates less.
# Environment: KW_BENCH_COUNTS (default "10000 100000"), KW_BENCH_TIMEOUT (seconds allowed for
# each start-up and each reload, default 1800).
set -euo pipefail
. "$(dirname "$0")/lib-ks.sh"
bench_init bench/ks-many-keys.sh "${1:-}"

COUNTS=${KW_BENCH_COUNTS:-10000 100000}
CACHE=${KW_BENCH_KEYS_CACHE:-/var/tmp/keyward-many-keys}
GEN=${KW_BENCH_GEN:-2}
TIMEOUT=${KW_BENCH_TIMEOUT:-1800}
MAX=${COUNTS##* }

echo "bench: $MAX keys in $CACHE/all (generated once)..." >&2
gen=()
for ((i = 0; i < GEN; i++)); do
    python3 "$SRC/bench/tools/ks_genkeys.py" "$CACHE/all" $((MAX * (i + 1) / GEN)) \
        $((MAX * i / GEN)) &
    gen+=($!)
done
for p in "${gen[@]}"; do wait "$p" || { echo "bench: key generation failed" >&2; exit 1; }; done
now_ms() { date +%s%3N; }

declare -A START RELOAD RSS RSS2 LCK WARN START_CPU RELOAD_CPU
HZ=$(getconf CLK_TCK)
ks_cpu() { awk '{print $14 + $15}' "/proc/$KS_PID/stat"; } # user + system ticks, all threads
for n in $COUNTS; do
    dir=$CACHE/n$n
    if [ ! -d "$dir" ] || [ "$(find "$dir" -name '*.key' | wc -l)" != "$n" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        (cd "$CACHE/all" && ls | grep -E "\.(key|crt)$" | sort | sed -n "1,$((2 * n))p" |
            sed "s|^|$CACHE/all/|" | xargs ln -s -t "$dir")
    fi
    PORT=$(port)
    log=$TMP/ks.$n.log
    t0=$(now_ms)
    KS_KEYS=$dir KS_WAIT=$TIMEOUT start_ks "$PORT" "ks.$n" --allow-all
    t1=$(now_ms)
    START[$n]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1000}')
    cpu0=$(ks_cpu)
    START_CPU[$n]=$(awk -v t="$cpu0" -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz}')
    RSS[$n]=$(ks_status VmRSS)
    LCK[$n]=$(ks_status VmLck)
    # The reload's end: the first "reloaded" line after the SIGHUP, read by following the log from
    # its current end (grepping the whole log, 20 MB with 100,000 keys, would compete for the CPU).
    # The end is read here, before the SIGHUP: inside <(...) it would be read whenever that
    # process runs, on a busy machine after a fast reload's line.
    end=$(stat -c %s "$log")
    exec {follow}< <(exec tail -c "+$((end + 1))" -F "$log" 2>/dev/null)
    follower=$!
    t0=$(now_ms)
    kill -HUP "$KS_PID"
    timeout "$TIMEOUT" grep -q -m 1 "reloaded\|reload failed" <&"$follow" || {
        echo "bench: no reload within $TIMEOUT s with $n keys: $(tail -n 3 "$log")" >&2
        exit 1
    }
    t1=$(now_ms)
    kill "$follower" 2>/dev/null || true
    exec {follow}<&-
    grep -q "reload failed" "$log" && echo "bench: reload with $n keys failed: $(grep "reload failed" "$log")" >&2
    RELOAD[$n]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1000}')
    RELOAD_CPU[$n]=$(awk -v t="$(($(ks_cpu) - cpu0))" -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz}')
    sleep 0.5
    RSS2[$n]=$(ks_status VmRSS)
    WARN[$n]=$(grep -i "secure heap\|refused\|not loaded" "$log" | head -n 3 | paste -sd';' - || true)
    echo "bench: $n keys: start ${START[$n]} s (CPU ${START_CPU[$n]} s), RSS ${RSS[$n]} KiB (locked ${LCK[$n]}), reload" \
        "${RELOAD[$n]} s (CPU ${RELOAD_CPU[$n]} s), RSS after ${RSS2[$n]} KiB; warnings: ${WARN[$n]:-none}" >&2
    kill "$KS_PID"
    wait "$KS_PID" 2>/dev/null || true
    KS_PID=
done

echo
echo "keyward-keyserver with many ECDSA P-256 keys (with certificates); $(date -u '+%Y-%m-%d %H:%M UTC')," \
    "$(nproc) vCPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| keys | start-up s (CPU s) | RSS MiB | KiB per key | locked (secure heap) MiB | SIGHUP reload s (CPU s) | RSS after reload MiB |"
echo "|---|---|---|---|---|---|---|"
for n in $COUNTS; do
    awk -v n="$n" -v s="${START[$n]} (${START_CPU[$n]})" -v r="${RSS[$n]}" -v l="${LCK[$n]}" \
        -v h="${RELOAD[$n]} (${RELOAD_CPU[$n]})" -v r2="${RSS2[$n]}" \
        'BEGIN {printf "| %d | %s | %.1f | %.1f | %.1f | %s | %.1f |\n",
        n, s, r / 1024, r / n, l / 1024, h, r2 / 1024}'
done
echo
for n in $COUNTS; do echo "secure-heap warnings with $n keys: ${WARN[$n]:-none}"; done
