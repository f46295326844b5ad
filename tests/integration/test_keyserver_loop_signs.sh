#!/bin/bash
# The key server on one CPU (issue 16): with --workers auto (the default) and an affinity mask of
# one CPU, or with --workers 0, the loop thread signs every request for a key in memory itself
# instead of handing it to a worker that would only take turns with the loop on that CPU. Checks:
# the start-up line says which mode runs (taskset -c 0: the loop signs; all CPUs: N workers);
# RSA, ECDSA and Ed25519 requests are answered without error at 1 and 64 in flight with
# --workers 0; and fairness survives: one connection keeping 256 RSA-2048 signatures
# in flight does not starve another connection's ECDSA signatures (the loop signs a budget's
# worth per iteration, in turns between connections, and reads between batches).
. "$(dirname "$0")/lib.sh"

make_pki
# wait_log NAME TEXT: TEXT appears in $KW_TMP/NAME.log within 5 s (the port opens just before
# the start-up line is written).
wait_log() {
    local i
    for i in $(seq 100); do
        grep -q "$2" "$KW_TMP/$1.log" && return 0
        sleep 0.05
    done
    return 1
}
ARGS=(--cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys")

# Start-up line: taskset -c 0 and the default --workers.
P1=$(free_port)
start_bg one "taskset" -c 0 "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$P1" "${ARGS[@]}"
ONE=$LAST_PID
wait_port "$P1" 15 || fail "key server on one CPU did not start"
wait_log one "one CPU: the loop thread signs" ||
    fail "taskset -c 0, --workers auto: the loop does not sign: $(cat "$KW_TMP/one.log")"
kill "$ONE"
if [ "$(nproc)" -ge 2 ]; then
    P2=$(free_port)
    start_bg all "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$P2" "${ARGS[@]}"
    ALL=$LAST_PID
    wait_port "$P2" 15 || fail "key server on all CPUs did not start"
    wait_log all "with $(nproc) workers" ||
        fail "--workers auto on $(nproc) CPUs: $(cat "$KW_TMP/all.log")"
    kill "$ALL"
fi
pass "--workers auto: the loop signs on one CPU, $(nproc) workers on $(nproc)"

PORT=$(free_port)
start_keyserver ks "$PORT" --workers 0
wait_log ks "one CPU: the loop thread signs" || fail "--workers 0: $(cat "$KW_TMP/ks.log")"
head -c 32 /dev/urandom >"$KW_TMP/dgst"
for k in rsa2048:0x05 ecdsa-p256:0x15 ed25519:0x18; do
    for n in 1 64; do
        kw_rawc "$PORT" --count 300 --inflight "$n" --op "${k#*:}" \
            --key-cert "$PKI/certs/${k%%:*}.crt" --payload-file "$KW_TMP/dgst" >"$KW_TMP/rc.out" 2>&1 ||
            fail "--workers 0, ${k%%:*} at $n in flight: $(cat "$KW_TMP/rc.out")"
    done
done
pass "--workers 0: RSA-2048, ECDSA P-256 and Ed25519 at 1 and 64 in flight"

ABUSE=(python3 "$KW_SOURCE_DIR/tests/integration/tools/kw_abuse.py")
TLS=(--server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" --key "$PKI/edge.key" --ca "$PKI/ca.crt")
EC_ID=$(kw_keyid "$PKI/certs/ecdsa-p256.crt")
RSA_ID=$(kw_keyid "$PKI/certs/rsa2048.crt")
probe() { "${ABUSE[@]}" latency "${TLS[@]}" --digest "$1" --opcode "$2" --count "$3" --gap-ms 2; }
field() { sed -n "s/.*$1 \([0-9]*\).*/\1/p" <<<"$2"; }
probe_under_rsa_flood "$PORT"
p50=$(field p50_us "$ec_flood")
rsa=$(field p50_us "$rsa_alone")
ec=$(field p50_us "$ec_alone")
[ "$(field errors "$ec_flood")" = 0 ] || fail "errors under the flood: $ec_flood"
# The budget (1 ms) plus a few RSA operations on top of the ECDSA round trip, at least 15 ms (a
# loaded machine preempts the one thread that does everything; measured 2-3.6 ms on a shared
# 2-CPU VM). Waiting behind the flood (no turns) would take 256 RSA operations, 70-130 ms.
bound=$((ec + 1000 + 4 * rsa))
[ "$bound" -ge 15000 ] || bound=15000
[ "$p50" -le "$bound" ] ||
    fail "--workers 0: ECDSA p50 under a 256-deep RSA flood: $p50 us (bound $bound us)"
pass "--workers 0: ECDSA p50 under the flood $p50 us (alone $ec us; RSA alone $rsa us; bound $bound us)"
