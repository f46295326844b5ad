#!/bin/bash
# Key server memory per idle mTLS connection: RSS delta / connections with 5,000 and 20,000 held.
#   bench/ks-memory.sh [BUILD_DIR]        (default: build; not a CTest test)
# Starts keyward-keyserver on loopback with a fresh test PKI, measures its RSS (VmRSS) after one
# warm-up connection, then opens connections with tests/integration/tools/kw_hold.py (several
# processes, one ping answered on each, then idle) up to 5,000 and then 20,000, waits
# KW_BENCH_SETTLE seconds (default 3: longer than the server's buffer-release delay) and reads the
# RSS again. Only the key server's RSS counts; the holders' memory is not measured.
# File descriptors: the key server needs one per connection plus its own (~20). The script raises
# RLIMIT_NOFILE (soft and hard) for itself and so for the key server and the holders; raising the
# hard limit needs CAP_SYS_RESOURCE (root on a normal machine). Where the hard limit cannot be
# raised (a container whose hard limit is 20,000), a count that does not fit is lowered to what
# fits (hard limit - the key server's own descriptors - 32) and the table says so.
# Environment: KW_BENCH_COUNTS (default "5000 20000"), KW_BENCH_HOLDERS (processes, default 8),
# KW_BENCH_SETTLE, KW_BENCH_KS_ARGS (extra key server options).
set -euo pipefail
. "$(dirname "$0")/lib-ks.sh"

COUNTS=${KW_BENCH_COUNTS:-5000 20000}
HOLDERS=${KW_BENCH_HOLDERS:-8}
SETTLE=${KW_BENCH_SETTLE:-3}
MAX=${COUNTS##* }
NOFILE=$((MAX + 256))
HARD=$(ulimit -Hn)
if [ "$HARD" != unlimited ] && [ "$HARD" -lt "$NOFILE" ]; then
    if ulimit -Hn "$NOFILE" 2>/dev/null; then
        HARD=$NOFILE
    else
        echo "bench: cannot raise the hard RLIMIT_NOFILE $HARD to $NOFILE (no CAP_SYS_RESOURCE):" \
            "counts above what fits are lowered" >&2
    fi
fi
ulimit -Sn "$HARD"

bench_init bench/ks-memory.sh "${1:-}"
PORT=$(port)
# shellcheck disable=SC2086
start_ks "$PORT" ks --idle-timeout-ms 3600000 --max-connections 0 --handshake-timeout-ms 120000 \
    --max-handshakes 100000 --max-handshakes-per-ip 100000 --log-level warn ${KW_BENCH_KS_ARGS:-}
rss() { ks_status VmRSS; }

# n connections in $HOLDERS processes; returns once all are held (each holder prints "held").
HOLD_PIDS=()
hold() {
    local n=$1 per i fifo
    per=$(((n + HOLDERS - 1) / HOLDERS))
    for ((i = 0; i < HOLDERS && n > 0; i++)); do
        [ "$per" -gt "$n" ] && per=$n
        fifo=$TMP/hold.${#HOLD_PIDS[@]}
        mkfifo "$fifo.in"
        python3 "$SRC/tests/integration/tools/kw_hold.py" 127.0.0.1 "$PORT" "$PKI/edge.crt" \
            "$PKI/edge.key" "$PKI/ca.crt" "$per" <"$fifo.in" >"$fifo.out" &
        HOLD_PIDS+=($!)
        PIDS+=($!)
        exec {fd}>"$fifo.in" # keeps the holder's stdin open
        n=$((n - per))
    done
    for i in "${!HOLD_PIDS[@]}"; do
        while ! grep -q '^held' "$TMP/hold.$i.out" 2>/dev/null; do
            kill -0 "${HOLD_PIDS[$i]}" 2>/dev/null || {
                echo "bench: holder $i failed; key server log: $(tail -n 3 "$TMP/ks.log")" >&2
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
# The most connections the key server can hold: its hard limit less its own descriptors (the
# warm-up connection included) and a margin for files it opens on the way (logs, reloads).
OWN=$(find "/proc/$KS_PID/fd" -mindepth 1 | wc -l)
FITS=$HARD
[ "$HARD" = unlimited ] || FITS=$((HARD - OWN - 32))
echo "bench: key server RSS ${BASE} KiB with 1 connection, $OWN descriptors open" >&2
declare -A RES
DONE=()
NOTE=""
for n in $COUNTS; do
    if [ "$FITS" != unlimited ] && [ "$n" -gt "$FITS" ]; then
        NOTE="$NOTE $n lowered to $FITS (hard RLIMIT_NOFILE $HARD, cannot be raised here)."
        n=$FITS
    fi
    hold $((n - HELD + 1))
    HELD=$((n + 1))
    sleep "$SETTLE"
    now=$(rss)
    RES[$n]=$(awk -v a="$now" -v b="$BASE" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}')
    DONE+=("$n")
    echo "bench: $n more connections held: RSS $now KiB, ${RES[$n]} KiB each" >&2
done
echo
echo "keyward-keyserver memory per idle mTLS connection (RSS delta / connections, the holders'"
echo "memory not counted); $(date -u +%Y-%m-%d), load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$NOTE" ] || echo "note:$NOTE"
echo "| held connections | KiB per connection | goal |"
echo "|---|---|---|"
for n in "${DONE[@]}"; do
    echo "| $n | ${RES[$n]} | ≤ 16 |"
done
