#!/bin/bash
# Shared opening of the benchmarks that start keyward-keyserver on their own (bench/ks-memory.sh,
# bench/ks-many-keys.sh). Sourced after `set -euo pipefail`:
#   . "$(dirname "$0")/lib-ks.sh"
#   ks_init PREFIX "${1:-}"
# ks_init sets SRC, BUILD (default: build), KS (the key server binary; exits if not built), TMP
# (removed on exit, with KS_PID and every pid in EXTRA_PIDS stopped) and PKI (a fresh test PKI,
# or a copy of KW_BENCH_PKI when set).
# Then: ks_port (a free loopback port), ks_wait_port PORT [SECONDS] (exits when the key server
# dies or the time runs out), ks_status FIELD (a field of /proc/KS_PID/status, in kB).

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ks_init() {
    BUILD=${2:-build}
    case $BUILD in /*) ;; *) BUILD=$SRC/$BUILD ;; esac
    KS=$BUILD/bin/keyward-keyserver
    [ -x "$KS" ] || {
        echo "bench: build first (need $KS)" >&2
        exit 1
    }
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    KS_PID=
    EXTRA_PIDS=()
    trap ks_cleanup EXIT
    if [ -n "${KW_BENCH_PKI:-}" ]; then # a test PKI made earlier (bench/table.sh)
        cp -a "$KW_BENCH_PKI" "$TMP/pki"
    else
        sh "$SRC/scripts/make-pki.sh" "$TMP/pki" >/dev/null
    fi
    PKI=$TMP/pki
}

ks_cleanup() {
    local p
    for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ -n "$KS_PID" ]; then
        kill "$KS_PID" 2>/dev/null || true
        wait "$KS_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}

ks_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ks_wait_port PORT [SECONDS]: until 127.0.0.1:PORT accepts (default 10 s, polled every 20 ms).
ks_wait_port() {
    local end=$((SECONDS + ${2:-10}))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        kill -0 "$KS_PID" 2>/dev/null || {
            echo "bench: the key server exited: $(tail -n 3 "$TMP"/ks*.log 2>/dev/null)" >&2
            exit 1
        }
        [ "$SECONDS" -lt "$end" ] || {
            echo "bench: the key server does not listen on port $1" >&2
            exit 1
        }
        sleep 0.02
    done
}

ks_status() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$KS_PID/status"; }
