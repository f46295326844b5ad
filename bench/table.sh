#!/bin/bash
# Issue 16's table, re-measured: runs every row's benchmark once per run (bench/handshake.sh
# co-located and --split, bench/keyserver.sh per core, bench/ks-memory.sh, bench/proxy.sh against
# nginx stream; h2load is the load generator of the handshake rows) and prints a Markdown table
#   measure | run 1 | run 2 | run 3 | goal | met in N of 3
# under a line naming the date, the machine and the load average before and after.
#   bench/table.sh [BUILD_DIR] [--runs N] [--quick] [--out DIR] [--readme] [--memory-once]
# --runs N: how many runs (default 3). --quick: short durations to check the scripts (numbers
# meaningless). --out DIR: where the raw output of every script and table.md go (default
# bench/results/<UTC date and time>). --readme: also writes the table into README.md between
# the markers <!-- bench:table:start --> and <!-- bench:table:end -->. --from DIR: no runs, the
# table again from the raw output of an earlier run in DIR (with its --runs and --quick).
# --memory-once: the memory rows in run 1 only (RSS per connection hardly moves between runs, and
# holding 25,000 mTLS connections is the longest step); their other cells say "-".
# Durations (full mode, per run): handshake.sh 2 x 2 keys x (1 warm-up + 3 rounds) x 2 setups of
# 3,000 handshakes; keyserver.sh 3 s at 256 in flight x 3 algorithms + openssl speed twice, once
# as deployed and once with --rsa-cache-factors yes (an info row: what keeping p and q out of
# ordinary memory costs); ks-memory.sh 5,000 then 20,000 held; proxy.sh ECDSA 1 warm-up + 3
# rounds x 2 of 4,000 handshakes (shorter rounds leave the CPUs idle at the start and the tail of
# each h2load run). Info rows carry no goal: the split RSA ceiling (how far the split ratio can go
# on this machine at all) and the RSA row with cached factors.
# Not a CTest test; needs nginx, libnginx-mod-stream, h2load, taskset, python3.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$SRC/build
RUNS=3
QUICK=0
OUT=""
README=0
MEMORY_ONCE=0
FROM=""
while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --readme) README=1; shift ;;
    --memory-once) MEMORY_ONCE=1; shift ;;
    --from) FROM=$2; shift 2 ;;
    -*) echo "usage: bench/table.sh [BUILD_DIR] [--runs N] [--quick] [--out DIR] [--readme] [--from DIR] [--memory-once]" >&2; exit 2 ;;
    *) BUILD=$1; shift ;;
    esac
done
BUILD=$(cd "$BUILD" && pwd)
OUT=${FROM:-${OUT:-$SRC/bench/results/$(date -u +%Y%m%dT%H%M%SZ)}}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ "$QUICK" = 1 ]; then
    HS_ENV=(REQUESTS=300 ROUNDS=1)
    KS_ENV=(SECONDS_PER_RUN=1)
    MEM_COUNTS=(500 1000)
    MEM_ENV=(KW_BENCH_COUNTS="${MEM_COUNTS[*]}" KW_BENCH_SETTLE=1)
    PX_ENV=(REQUESTS=300 STREAM_ROUNDS=1)
else
    HS_ENV=(REQUESTS=3000 ROUNDS=3)
    KS_ENV=(SECONDS_PER_RUN=3)
    MEM_COUNTS=(5000 20000)
    MEM_ENV=(KW_BENCH_COUNTS="${MEM_COUNTS[*]}" KW_BENCH_SETTLE=3)
    PX_ENV=(REQUESTS=4000 STREAM_ROUNDS=3)
fi

machine() {
    local model mem deb
    model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
    mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
    deb=$(cat /etc/debian_version 2>/dev/null || echo "?")
    echo "${model:-unknown CPU}, $(nproc) vCPUs, $mem RAM, Linux $(uname -r), Debian $deb," \
        "$(openssl version | cut -d' ' -f1-2)"
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_S=$(date +%s)
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo "?")

# step NAME RUN ENV... -- CMD...: runs CMD with ENV, output (stdout and stderr) in
# $OUT/runRUN-NAME.txt; records its duration; never fails the table (a failed step's cells say so).
step() {
    local name=$1 run=$2 env=() t0 rc=0
    shift 2
    while [ "$1" != -- ]; do env+=("$1"); shift; done
    shift
    t0=$(date +%s)
    echo "table: run $run: $name..." >&2
    env "${env[@]}" "$@" >"$OUT/run$run-$name.txt" 2>&1 || rc=$?
    echo "$name run $run: $(($(date +%s) - t0)) s, exit $rc" >>"$OUT/durations.txt"
    [ "$rc" = 0 ] || echo "table: run $run: $name failed (exit $rc), see $OUT/run$run-$name.txt" >&2
}

# A PKI made once for every script (each would otherwise spend seconds of CPU on RSA keys).
[ -n "$FROM" ] || { [ -f "$OUT/pki/ca.crt" ] || sh "$SRC/scripts/make-pki.sh" "$OUT/pki" >/dev/null; }
export KW_BENCH_PKI=$OUT/pki
for run in $(seq "$RUNS"); do
    [ -z "$FROM" ] || break
    step handshake "$run" "${HS_ENV[@]}" DOC=none -- bash "$SRC/bench/handshake.sh" "$BUILD"
    step handshake-split "$run" "${HS_ENV[@]}" DOC=none -- \
        bash "$SRC/bench/handshake.sh" --split "$BUILD"
    step keyserver "$run" "${KS_ENV[@]}" KW_BENCH_SPLIT=1 KW_BENCH_INFLIGHT=256 -- \
        bash "$SRC/bench/keyserver.sh" "$BUILD"
    # The same with --rsa-cache-factors yes (not the default: OpenSSL's Montgomery contexts of p
    # and q then stay in ordinary memory): what the secure-heap CRT step costs, as an info row.
    step keyserver-rsacache "$run" "${KS_ENV[@]}" KW_BENCH_SPLIT=1 KW_BENCH_INFLIGHT=256 \
        KW_BENCH_RSA_CACHE=yes -- bash "$SRC/bench/keyserver.sh" "$BUILD"
    step proxy-stream "$run" "${PX_ENV[@]}" STREAM_ONLY=1 STREAM_KEYS=ecdsa-p256 -- \
        bash "$SRC/bench/proxy.sh" "$BUILD"
    [ "$MEMORY_ONCE" = 1 ] && [ "$run" -gt 1 ] && continue
    step ks-memory "$run" "${MEM_ENV[@]}" -- bash "$SRC/bench/ks-memory.sh" "$BUILD"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START_S))
if [ -n "$FROM" ]; then
    . "$OUT/meta.sh" # the header of the runs, not of this call
else
    declare -p START_DATE COMMIT LOAD_BEFORE LOAD_AFTER ELAPSED MEMORY_ONCE >"$OUT/meta.sh"
fi

# Cells. Each extractor prints "VALUE DETAIL" for one run's raw file, or nothing.
hs_ratio() { # FILE KEY: keyward/disk handshakes/s (best / best)
    awk -F'|' -v k="$2" '$2 ~ "^ *"k" *$" {gsub(/ /, "", $3); gsub(/ /, "", $4);
        if ($3 > 0) printf "%.3f %.0f/%.0f/s\n", $4 / $3, $4, $3}' "$1" 2>/dev/null
}
hs_cpu() { # FILE KEY: edge CPU per handshake, keyward / disk
    awk -F'|' -v k="$2" '$2 ~ "^ *"k" *$" {split($8, c, " "); # "D µs / K µs"
        if (c[1] > 0) printf "%.3f %d/%dµs\n", c[4] / c[1], c[4], c[1]}' "$1" 2>/dev/null
}
ks_ratio() { # FILE LABEL: key server ops/s / openssl speed on one core, 256 in flight
    awk -F'|' -v l="$2" 'index($2, l) == 2 && $4 ~ /\(/ {split($4, s, " "); gsub(/ /, "", $3);
        if ($3 > 0) printf "%.3f %.0f/%.0f/s\n", s[1] / $3, s[1], $3}' "$1" 2>/dev/null
}
split_ceiling() { # FILE: the most the split RSA ratio can be on this machine: CPU 0 (nginx and
    # h2load, saturated) spends 1/disk-rate per handshake with the key on disk; with keyward it
    # saves at most the local RSA-PSS signature (openssl speed's RSA-2048 time on one core, from
    # the same run's keyserver file), so the ceiling is (1/rate) / (1/rate - t_sign).
    local ks=${1%-handshake-split.txt}-keyserver.txt
    awk -F'|' -v ksf="$ks" 'BEGIN {while ((getline l < ksf) > 0) if (l ~ /^\| RSA-2048/) {
            split(l, f, "|"); gsub(/ /, "", f[3]); sp = f[3]; break }}
        $2 ~ /^ *rsa2048 *$/ {gsub(/ /, "", $3); if ($3 > 0 && sp > 0) {t = 1e6 / $3; r = 1e6 / sp;
            printf "%.3f %.0f/(%.0f-%.0f)µs\n", t / (t - r), t, t, r}}' "$1" 2>/dev/null
}
mem_at() { # FILE INDEX: KiB per connection at the INDEX-th count (1 or 2)
    awk -F'|' -v i="$2" '$2 ~ /^ [0-9]+ $/ {n++; if (n == i) {gsub(/ /, "", $2); gsub(/ /, "", $3);
        printf "%.1f %s_held\n", $3, $2}}' "$1" 2>/dev/null
}
px_ratio() { # FILE: keyward-proxy / nginx stream, ECDSA
    awk -F'|' '$2 ~ /^ *ecdsa-p256 *$/ && $7 ~ /1.2/ {gsub(/ /, "", $3); gsub(/ /, "", $4);
        if ($4 > 0) printf "%.3f %.0f/%.0f/s\n", $3 / $4, $3, $4}' "$1" 2>/dev/null
}

# ROWS: label | goal op | goal | extractor (called with the run's raw-file prefix)
ROWS=(
    "nginx + provider vs key on disk, ECDSA P-256, TLS 1.3 full handshakes/s (co-located)|>=|0.95|hs_ratio @handshake ecdsa-p256"
    "nginx edge CPU per ECDSA handshake, provider / key on disk|<=|1.10|hs_cpu @handshake ecdsa-p256"
    "nginx + provider vs key on disk, RSA-2048 (co-located)|>=|0.95|hs_ratio @handshake rsa2048"
    "split (key server on CPU 1), RSA-2048|>=|1.30|hs_ratio @handshake-split rsa2048"
    "split, RSA-2048: the most it can be on this machine, t / (t - one local RSA signature), t = CPU 0 time per disk handshake (info)|info|-|split_ceiling @handshake-split"
    "split (key server on CPU 1), ECDSA P-256|>=|0.95|hs_ratio @handshake-split ecdsa-p256"
    "key server ECDSA P-256 sign/s per core vs openssl speed on one core|>=|0.80|ks_ratio @keyserver ECDSA"
    "key server RSA-2048 sign/s per core vs openssl speed on one core|>=|0.95|ks_ratio @keyserver RSA-2048"
    "the same with --rsa-cache-factors yes, p and q's contexts cached in ordinary memory (info; not the default)|info|-|ks_ratio @keyserver-rsacache RSA-2048"
    "key server KiB per idle mTLS connection, ${MEM_COUNTS[0]} held|<=|16|mem_at @ks-memory 1"
    "key server KiB per idle mTLS connection, ${MEM_COUNTS[1]} held|<=|16|mem_at @ks-memory 2"
    "keyward-proxy vs nginx stream (key on disk), ECDSA P-256|>=|1.2|px_ratio @proxy-stream"
)
hdr="| measure |"
sep="|---|"
for run in $(seq "$RUNS"); do hdr+=" run $run |"; sep+="---|"; done
TABLE=$(
    echo "$hdr goal | met in N of $RUNS |"
    echo "$sep---|---|"
    for spec in "${ROWS[@]}"; do
        IFS='|' read -r label op goal ext <<<"$spec"
        read -r fn file arg <<<"$ext"
        met=0
        of=0
        line="| $label |"
        for run in $(seq "$RUNS"); do
            if [ ! -e "$OUT/run$run-${file#@}.txt" ] && [ "$file" = @ks-memory ] && [ "$run" -gt 1 ]; then
                line+=" - |" # --memory-once
                continue
            fi
            of=$((of + 1))
            got=$($fn "$OUT/run$run-${file#@}.txt" $arg | head -n 1)
            if [ -z "$got" ]; then
                line+=" failed |"
                continue
            fi
            read -r value detail <<<"$got"
            # "5000_held" and "1480/1526/s" details keep the cell one word
            fmt=%.2f
            [ "$goal" = 16 ] && fmt=%.1f # KiB
            line+=" $(printf "$fmt" "$value") (${detail//_/ }) |"
            if [ "$op" = info ]; then
                continue
            elif awk -v v="$value" -v g="$goal" -v o="$op" \
                'BEGIN {exit !((o == ">=" && v + 0.0005 >= g) || (o == "<=" && v - 0.0005 <= g))}'; then
                met=$((met + 1))
            fi
        done
        sym="≥"
        [ "$op" = "<=" ] && sym="≤"
        if [ "$op" = info ]; then
            echo "$line - | - |"
        else
            echo "$line $sym $goal | $met of $of |"
        fi
    done
)
NOTE=$(grep -h "^note:" "$OUT"/run*-ks-memory.txt 2>/dev/null | sort -u | sed 's/^note: *//' | paste -sd' ' - || true)
HEADER="Measured $START_DATE by \`bench/table.sh --runs $RUNS$([ "$QUICK" = 1 ] && echo " --quick")$([ "$MEMORY_ONCE" = 1 ] && echo " --memory-once")\` \
(commit $COMMIT, $ELAPSED s): $(machine); load average $LOAD_BEFORE before, $LOAD_AFTER after."
FOOT="Cells: ratio (keyward / reference, its rates or CPU µs), or KiB per connection (held \
connections). Handshake rows: h2load --h1, full TLS 1.3 handshakes, best of the alternating \
rounds of each run. Per-core rows: key server on CPU 0 (KW_BENCH_SPLIT=1 bench/keyserver.sh: --workers auto), kw_rawclient on CPU 1, \
256 in flight, against \`openssl speed\` on CPU 0.${NOTE:+ Memory: $NOTE} Raw output \
(not in git): bench/results/$(basename "$OUT")/ on the machine that measured."
{
    echo "$HEADER"
    echo
    echo "$TABLE"
    echo
    echo "$FOOT"
} >"$OUT/table.md"
cat "$OUT/table.md"
echo >&2
echo "table: $RUNS run(s) in $ELAPSED s; raw output and table.md in $OUT" >&2
if [ "$README" = 1 ]; then
    python3 - "$SRC/README.md" "$OUT/table.md" <<'PY'
import sys
path, table = sys.argv[1], open(sys.argv[2]).read().strip()
start, end = "<!-- bench:table:start -->", "<!-- bench:table:end -->"
text = open(path).read()
if start not in text or end not in text:
    sys.exit("table: no %s / %s markers in %s" % (start, end, path))
head, rest = text.split(start, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + start + "\n" + table + "\n" + end + tail)
print("table: updated " + path, file=sys.stderr)
PY
fi
