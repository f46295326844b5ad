#!/bin/bash
# Shared setup of the keyward-proxy benchmarks (bench/proxy.sh, bench/soak.sh). Sourced after
# `set -euo pipefail`:
#   . "$(dirname "$0")/lib-proxy.sh"
#   bench_init NAME BUILD_DIR [NEED...]
# bench_init checks that the build has keyward-proxy, keyward-keyserver, the provider and
# kw_backend, and each NEED (a path with a / is a file in the build, else a command on PATH);
# then makes TMP (removed on exit, with every process in PIDS stopped) and a test PKI in PKI (a
# copy of KW_BENCH_PKI when set).
# Then: port, wait_port PORT, start_bg LOG CMD..., start_ks PORT LOG, start_proxy PORT
# BACKEND_PORT [keyward-proxy options].

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# bench_init NAME BUILD_DIR [NEED...]: sets BENCH_NAME, BUILD, TMP, PIDS, PKI.
bench_init() {
    BENCH_NAME=$1
    BUILD=$(cd "${2:-$SRC/build}" && pwd)
    shift 2
    local f
    for f in bin/keyward-proxy bin/keyward-keyserver lib/keyward.so tests/kw_backend "$@"; do
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
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}

# port: a free loopback port.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_port PORT: waits up to 15 s for a listener on 127.0.0.1:PORT; exits 1 if none comes.
wait_port() {
    for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "$BENCH_NAME: nothing listens on port $1" >&2
    exit 1
}

# start_bg LOG CMD...: runs CMD in the background, output appended to $TMP/LOG.log; sets BG_PID.
start_bg() {
    local log=$1
    shift
    "$@" >>"$TMP/$log.log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# start_ks PORT LOG: a key server with the PKI's site keys on 127.0.0.1:PORT; sets KSPID.
start_ks() {
    start_bg "$2" "$BUILD/bin/keyward-keyserver" --listen "127.0.0.1:$1" \
        --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" \
        --keys "$PKI/keys"
    # shellcheck disable=SC2034 # used by the sourcing script
    KSPID=$BG_PID
    wait_port "$1"
}

# start_proxy PORT BACKEND_PORT [OPTION...]: keyward-proxy for the rsa2048 and ecdsa-p256 sites
# with the edge identity and the provider (OPTIONs name the key servers); sets PROXY_PID.
start_proxy() {
    local p=$1 bp=$2
    shift 2
    start_bg proxy "$BUILD/bin/keyward-proxy" --listen "127.0.0.1:$p" --backend "127.0.0.1:$bp" \
        --cert "$PKI/certs/rsa2048.crt" --cert "$PKI/certs/ecdsa-p256.crt" \
        --client-cert "$PKI/edge.crt" --client-key "$PKI/edge.key" --ca "$PKI/ca.crt" \
        --provider "$BUILD/lib/keyward.so" "$@"
    # shellcheck disable=SC2034 # used by the sourcing script
    PROXY_PID=$BG_PID
}
