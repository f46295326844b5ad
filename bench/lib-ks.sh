#!/bin/bash
# The benchmarks' shared opening and their one way to start keyward-keyserver (bench/keyserver.sh,
# bench/ks-memory.sh, bench/ks-many-keys.sh; bench/lib-proxy.sh builds on it for proxy.sh, soak.sh
# and tickets.sh). Sourced after `set -euo pipefail`:
#   . "$(dirname "$0")/lib-ks.sh"
#   bench_init NAME BUILD_DIR [NEED...]
# bench_init checks that the build has keyward-keyserver, each of BENCH_NEEDS (set before the
# call; lib-proxy.sh sets it) and each NEED (a path with a / is a file in the build, else a
# command on PATH); then makes TMP (removed on exit, with every process in PIDS stopped) and a
# test PKI in PKI (a copy of KW_BENCH_PKI when set).
# Then: port, wait_port PORT [SECONDS [PID]], start_bg LOG CMD..., start_ks PORT LOG [OPTION...],
# ks_status FIELD.

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_init NAME BUILD_DIR [NEED...]: sets BENCH_NAME, BUILD (default: build), TMP, PIDS, KS_PID,
# PKI.
bench_init() {
    BENCH_NAME=$1
    BUILD=${2:-build}
    case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
    shift 2
    local f
    for f in bin/keyward-keyserver ${BENCH_NEEDS[@]+"${BENCH_NEEDS[@]}"} "$@"; do
        case $f in
        */*)
            [ -e "$BUILD/$f" ] ||
                { echo "$BENCH_NAME: $BUILD/$f missing: build first (make build)" >&2; exit 1; } ;;
        *)
            command -v "$f" >/dev/null || { echo "$BENCH_NAME: $f not installed" >&2; exit 1; } ;;
        esac
    done
    TMP=$(mktemp -d "/tmp/kw$(basename "$BENCH_NAME" .sh).XXXXXX")
    PIDS=()
    KS_PID=
    trap bench_cleanup EXIT
    if [ -n "${KW_BENCH_PKI:-}" ]; then # a test PKI made earlier (bench/table.sh)
        cp -a "$KW_BENCH_PKI" "$TMP/pki"
    else
        sh "$SRC/scripts/make-pki.sh" "$TMP/pki" >/dev/null
    fi
    PKI=$TMP/pki
}

bench_cleanup() {
    local p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
    for p in ${PIDS[@]+"${PIDS[@]}"}; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}

# port: a free loopback port.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_port PORT [SECONDS [PID [LOG]]]: until 127.0.0.1:PORT accepts (default 15 s, polled every
# 20 ms); exits 1, with the end of $TMP/LOG.log, when the time runs out or PID (the process that
# should listen) exits.
wait_port() {
    local end=$((SECONDS + ${2:-15})) why=
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
            why="process $3 exited before listening on port $1"
        elif [ "$SECONDS" -ge "$end" ]; then
            why="nothing listens on port $1"
        else
            sleep 0.02
            continue
        fi
        echo "$BENCH_NAME: $why${4:+: $(tail -n 3 "$TMP/$4.log" 2>/dev/null)}" >&2
        exit 1
    done
}

# start_bg LOG CMD...: runs CMD in the background, output appended to $TMP/LOG.log; sets BG_PID.
start_bg() {
    local log=$1
    shift
    "$@" >>"$TMP/$log.log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# start_ks PORT LOG [OPTION...]: keyward-keyserver on 127.0.0.1:PORT with the PKI's identity and
# the keys of KS_KEYS (default: the PKI's site keys), run under the command KS_PREFIX when set (an
# array, e.g. (taskset -c 0)); waits up to KS_WAIT seconds (default 15) for its port; sets KS_PID.
start_ks() {
    local p=$1 log=$2
    shift 2
    start_bg "$log" ${KS_PREFIX[@]+"${KS_PREFIX[@]}"} "$BUILD/bin/keyward-keyserver" \
        --listen "127.0.0.1:$p" --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" \
        --ca "$PKI/ca.crt" --keys "${KS_KEYS:-$PKI/keys}" "$@"
    KS_PID=$BG_PID
    wait_port "$p" "${KS_WAIT:-15}" "$KS_PID" "$log"
}

# ks_status FIELD: a field of /proc/KS_PID/status (VmRSS, VmLck: in kB).
ks_status() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$KS_PID/status"; }
