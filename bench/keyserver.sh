#!/bin/bash
# Key server throughput next to raw OpenSSL, measured in the same run on the same machine.
#   bench/keyserver.sh [BUILD_DIR]        (default: build)
# Starts keyward-keyserver on loopback with a fresh test PKI, drives it with kw_rawclient --bench
# at 1, 16 and 256 requests in flight for RSA-2048 (PKCS#1 SHA-256), ECDSA P-256 (SHA-256) and
# Ed25519 signatures, and prints each result with the ratio to `openssl speed -multi $(nproc)`
# (run before and after the server runs; the mean is the reference). The load generator runs on
# the same cores as the server, so the ratios are a lower bound of what a separate client gets.
# Environment: SECONDS_PER_RUN (default 3), KW_BENCH_WORKERS (default: nproc; split: auto, which
# on the one CPU the server may use means the loop thread signs, no worker hand-off; 1 gives the
# loop and one worker taking turns on that CPU, the behaviour before issue 16),
# KW_BENCH_RSA_CACHE=yes (run the server with --rsa-cache-factors yes: OpenSSL's cached p and q;
# the default keeps them in the secure heap, docs/security.md), KW_BENCH_SPLIT=1 (per core: the
# key server pinned to CPU 0, the load generator to CPU 1, and `openssl speed` on
# CPU 0 alone — issue 16's per-core figures), KW_BENCH_INFLIGHT (default "1 16 256"),
# KW_BENCH_PKI (a test PKI made earlier by scripts/make-pki.sh, copied instead of made).
set -euo pipefail
. "$(dirname "$0")/lib-ks.sh"
bench_init bench/keyserver.sh "${1:-}" tests/kw_rawclient
RAWC=$BUILD/tests/kw_rawclient
SECS=${SECONDS_PER_RUN:-3}
NPROC=$(nproc)
SPLIT=${KW_BENCH_SPLIT:-0}
# shellcheck disable=SC2034 # KS_PREFIX: read by start_ks
KS_PREFIX=() CL_PIN=() SPEED_MULTI=(-multi "$NPROC") SPEED_PIN=()
if [ "$SPLIT" = 1 ]; then
    KS_PREFIX=(taskset -c 0) CL_PIN=(taskset -c 1) SPEED_MULTI=() SPEED_PIN=(taskset -c 0)
    WORKERS=${KW_BENCH_WORKERS:-auto} # on one CPU: the loop thread signs (docs/keyserver.md)
    NPROC=1 # the reference and the CPU per operation are per core
else
    WORKERS=${KW_BENCH_WORKERS:-$NPROC}
fi
INFLIGHT=${KW_BENCH_INFLIGHT:-1 16 256}
PORT=$(port)
start_ks "$PORT" ks --workers "$WORKERS" --max-inflight 4096 \
    --rsa-cache-factors "${KW_BENCH_RSA_CACHE:-no}" --log-level warn

# openssl speed: sign/s per algorithm (RSA-2048, ECDSA P-256, Ed25519).
speed() {
    "${SPEED_PIN[@]}" openssl speed "${SPEED_MULTI[@]}" -seconds "$SECS" rsa2048 ecdsap256 ed25519 2>/dev/null |
        awk '/^rsa 2048 bits/ {r=$6} /ecdsa \(nistp256\)/ {e=$7} /EdDSA \(Ed25519\)/ {d=$7}
             END {print r, e, d}'
}

echo "bench: openssl speed ${SPEED_MULTI[*]} -seconds $SECS (before)..." >&2
read -r RSA1 EC1 ED1 < <(speed)

DIGEST=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
declare -A RES CPU
run() { # name opcode keyname inflight
    local conns=1 per=$4 out
    if [ "$4" -ge 64 ]; then
        conns=4
        per=$(($4 / 4))
    fi
    local t0 t1
    t0=$(awk '{print $14 + $15}' "/proc/$KS_PID/stat")
    out=$("${CL_PIN[@]}" "$RAWC" --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" --key "$PKI/edge.key" \
        --ca "$PKI/ca.crt" --bench --op "$2" --key-cert "$PKI/keys/$3.crt" \
        --payload-hex "$DIGEST" --connections "$conns" --inflight "$per" --seconds "$SECS")
    grep -q "errors=0 failed_connections=0" <<<"$out" || {
        echo "bench: $1 at $4 in flight failed: $out" >&2
        exit 1
    }
    t1=$(awk '{print $14 + $15}' "/proc/$KS_PID/stat")
    RES[$1:$4]=$(echo "$out" | sed -n 's/.*ops_per_sec=\([0-9.]*\).*/\1/p')
    OPS=$(echo "$out" | sed -n 's/.* ops=\([0-9]*\) .*/\1/p')
    # server CPU (all threads, user + system) per operation, in microseconds
    CPU[$1:$4]=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$OPS" \
        'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
    echo "bench: $1 inflight $4: ${RES[$1:$4]} ops/s ($conns connection(s))" >&2
}
for n in $INFLIGHT; do
    run rsa2048 0x05 rsa2048 "$n"
    run ecdsa-p256 0x15 ecdsa-p256 "$n"
    run ed25519 0x18 ed25519 "$n"
done

echo "bench: openssl speed ${SPEED_MULTI[*]} -seconds $SECS (after)..." >&2
read -r RSA2 EC2 ED2 < <(speed)
mean() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", (a + b) / 2}'; }
declare -A REF=([rsa2048]=$(mean "$RSA1" "$RSA2") [ecdsa-p256]=$(mean "$EC1" "$EC2")
    [ed25519]=$(mean "$ED1" "$ED2"))
declare -A TARGET=([rsa2048]=0.90 [ecdsa-p256]=0.80 [ed25519]=-)
[ "$SPLIT" = 1 ] && TARGET[rsa2048]=0.95
declare -A LABEL=([rsa2048]="RSA-2048 PKCS#1 SHA-256" [ecdsa-p256]="ECDSA P-256 SHA-256"
    [ed25519]="Ed25519")
LAST=${INFLIGHT##* }

MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo
if [ "$SPLIT" = 1 ]; then
    echo "keyward-keyserver on CPU 0 (--workers $WORKERS), load on CPU 1, vs openssl speed on CPU 0" \
        "($SECS s runs)"
else
    echo "keyward-keyserver vs openssl speed -multi $NPROC ($SECS s runs, $WORKERS workers)"
fi
echo "machine: $(nproc) x ${MODEL:-unknown CPU}, $(openssl version | cut -d' ' -f1-2), $(uname -sr)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "openssl speed sign/s before/after: RSA $RSA1/$RSA2, P-256 $EC1/$EC2, Ed25519 $ED1/$ED2"
echo
hdr="| algorithm                | openssl sign/s   |"
sep="|--------------------------|------------------|"
for n in $INFLIGHT; do
    hdr+=$(printf ' %-12s |' "$n in fl.")
    sep+="--------------|"
done
echo "$hdr target |"
echo "$sep--------|"
for alg in rsa2048 ecdsa-p256 ed25519; do
    row=$(printf '| %-24s | %-16s |' "${LABEL[$alg]}" "${REF[$alg]}")
    for n in $INFLIGHT; do
        row+=$(awk -v s="${RES[$alg:$n]}" -v r="${REF[$alg]}" \
            'BEGIN {printf " %-12s |", sprintf("%.0f (%.2f)", s, s / r)}')
    done
    printf '%s %-6s |\n' "$row" "${TARGET[$alg]}"
done
echo
echo "cells: server ops/s (ratio to openssl speed); target applies at $LAST in flight"
echo
echo "CPU cost per operation (contention-independent): key server process, all threads, at $LAST"
echo "in flight, against openssl speed's CPU time per signature ($NPROC / sign/s)"
printf '| %-24s | %-14s | %-18s | %-10s |\n' algorithm "openssl us/op" "key server us/op" efficiency
printf '|%s|%s|%s|%s|\n' -------------------------- ---------------- -------------------- ------------
for alg in rsa2048 ecdsa-p256 ed25519; do
    raw=$(awk -v r="${REF[$alg]}" -v n="$NPROC" 'BEGIN {printf "%.1f", n * 1e6 / r}')
    printf '| %-24s | %-14s | %-18s | %-10s |\n' "${LABEL[$alg]}" "$raw" "${CPU[$alg:$LAST]}" \
        "$(awk -v a="$raw" -v b="${CPU[$alg:$LAST]}" 'BEGIN {printf "%.2f", a / b}')"
done
