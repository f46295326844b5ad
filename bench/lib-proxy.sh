#!/bin/bash
# Shared setup of the keyward-proxy benchmarks (bench/proxy.sh, bench/soak.sh, bench/tickets.sh):
# bench/lib-ks.sh (the build check, TMP, the PKI, ports, start_bg, start_ks) with keyward-proxy,
# the provider and kw_backend added to what bench_init requires, and start_proxy. Sourced after
# `set -euo pipefail`:
#   . "$(dirname "$0")/lib-proxy.sh"
#   bench_init NAME BUILD_DIR [NEED...]
# Then, besides lib-ks.sh's helpers: start_proxy PORT BACKEND_PORT [keyward-proxy options].

. "$(dirname "${BASH_SOURCE[0]}")/lib-ks.sh"
# shellcheck disable=SC2034 # read by bench_init
BENCH_NEEDS=(bin/keyward-proxy lib/keyward.so tests/kw_backend)

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
