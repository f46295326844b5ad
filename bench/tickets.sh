#!/bin/bash
# Fleet session resumption benchmark (issue 19): a mixed load of new and returning clients (80%
# returning by default) spread over two keyward-proxy edges, first with each edge's own ticket
# keys (a returning client that lands on the other edge pays a full handshake and a key
# operation), then with the fleet's shared ticket keys (--tickets-from-keyserver). Prints, for
# TLS 1.3 and 1.2, key-server operations per 1,000 connections (from the key server's audit log),
# the share of resumed connections and handshakes/s (kw_resumeload). Not a CTest test.
# Usage: bench/tickets.sh [BUILD_DIR] [CONNECTIONS]   env KW_BENCH_RETURNING (default 80)
set -euo pipefail
. "$(dirname "$0")/lib-proxy.sh"
bench_init bench/tickets.sh "${1:-}" tests/kw_resumeload
COUNT=${2:-2000}
PCT=${KW_BENCH_RETURNING:-80}
THREADS=${KW_BENCH_THREADS:-4}

head -c 32 /dev/urandom >"$TMP/secret"
chmod 600 "$TMP/secret"
BP=$(port); KS=$(port)
start_bg backend "$BUILD/tests/kw_backend" --listen "127.0.0.1:$BP"
start_ks "$KS" ks --ticket-secret "$TMP/secret" --allow "cn:edge=*,tickets" \
    --audit-log "$TMP/audit.log" --log-level warn
wait_port "$BP"

key_ops() { grep -Ec '"opcode":"(ecdsa|rsa|tls)' "$TMP/audit.log" || true; }

# edges MODE: two edges, with the fleet's keys (shared) or each its own (own); sets EDGES.
edges() {
    local extra=() p1 p2
    [ "$1" = shared ] && extra=(--tickets-from-keyserver)
    p1=$(port); p2=$(port)
    for p in "$p1" "$p2"; do
        start_proxy "$p" "$BP" --keyserver "127.0.0.1:$KS" --threads 1 --log-level warn \
            "${extra[@]}"
        wait_port "$p"
    done
    EDGES="127.0.0.1:$p1,127.0.0.1:$p2"
    EDGE_PIDS=("${PIDS[@]: -2}")
}

echo "| TLS | ticket keys | connections | resumed | key ops / 1,000 conns | handshakes/s |"
echo "|---|---|---|---|---|---|"
for tls in 1.3 1.2; do
    for mode in own shared; do
        edges "$mode"
        before=$(key_ops)
        out=$("$BUILD/tests/kw_resumeload" --edges "$EDGES" --ca "$PKI/site-ca.crt" \
            --servername ecdsa-p256.example --count "$COUNT" --returning "$PCT" \
            --threads "$THREADS" --tls "$tls")
        sleep 0.5 # the audit lines of the last handshakes
        ops=$(($(key_ops) - before))
        read -r _ n _ r _ _ _ _ _ hs <<<"$out"
        echo "| $tls | $mode | $n | $((100 * r / n))% | $((1000 * ops / n)) | $hs |"
        kill "${EDGE_PIDS[@]}" 2>/dev/null || true
        wait "${EDGE_PIDS[@]}" 2>/dev/null || true
    done
done
echo
echo "$PCT% returning clients over two edges; 'own': each edge its own ticket keys, 'shared':"
echo "keyward-proxy --tickets-from-keyserver. Key ops counted in the key server's audit log."
