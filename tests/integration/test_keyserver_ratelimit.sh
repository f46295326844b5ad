#!/bin/bash
# Per-edge rate limits (issue 20, finding 5): --rate-limit N operations per second with bursts of
# --rate-burst B per edge (client key), shared by the edge's connections; beyond, error 0x41
# (rate-limited), counted in the metrics and written to the audit log. Pings are never limited;
# another edge has its own bucket; the bucket refills. The YAML keys rate_limit / rate_burst.
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
MPORT=$(free_port)
AUDIT=$KW_TMP/audit.log
printf 'limits:\n  rate_limit: 1\n  rate_burst: 10\n' >"$KW_TMP/ks.yaml"
start_keyserver ks "$PORT" --config "$KW_TMP/ks.yaml" --audit-log "$AUDIT" \
    --metrics "127.0.0.1:$MPORT"
grep -q "rate limit: 1 operations per second per edge, bursts of 10" "$KW_TMP/ks.log" ||
    fail "no start line for the rate limit"
ABUSE=(python3 "$KW_SOURCE_DIR/tests/integration/tools/kw_abuse.py")
EC_ID=$(kw_keyid "$PKI/certs/ecdsa-p256.crt")
probe() { # probe EDGE COUNT -> "p50_us ... errors E"
    "${ABUSE[@]}" latency --server "127.0.0.1:$PORT" --cert "$PKI/$1.crt" --key "$PKI/$1.key" \
        --ca "$PKI/ca.crt" --digest "$EC_ID" --opcode 0x15 --count "$2"
}
errors() { sed -n 's/.*errors \([0-9]*\).*/\1/p' <<<"$1"; }

out=$(probe edge 100) || fail "100 requests"
e=$(errors "$out")
# 10 at once, then one a second while the 100 go out (a few seconds on a busy machine).
[ "$e" -ge 60 ] && [ "$e" -le 90 ] || fail "100 requests at once: $e refused, expected 100 - (10 + 1/s)"
pass "100 requests at once from one edge: $((100 - e)) answered, $e refused with 0x41"

# The same edge on a new connection shares the bucket (a token a second came back meanwhile:
# python takes a second or two to start on a busy machine); another edge does not.
out=$(probe edge 20) || fail "20 more"
[ "$(errors "$out")" -ge 3 ] || fail "a second connection of the same edge is not limited: $out"
out=$(probe edge2 10) || fail "edge2"
[ "$(errors "$out")" = 0 ] || fail "another edge was limited: $out"
kw_rawc "$PORT" --op ping --payload-hex 6869 --count 20 | kw_grep "20 replies, 0 unexpected" ||
    fail "pings were limited"
pass "the edge's second connection shares its bucket; edge2 has its own; pings are never limited"

sleep 3 # 3 tokens, and one a second while python starts
out=$(probe edge 10) || fail "after 3 s"
e=$(errors "$out")
[ "$e" -le 7 ] || fail "the bucket did not refill at 1/s: $out"
pass "3 s later the edge has $((10 - e)) operations again (1/s)"

metrics=$(curl -s "http://127.0.0.1:$MPORT/metrics")
n=$(sed -n 's/^keyward_requests_total{opcode="ecdsa-sha256",result="rate-limited"} \([0-9]*\)$/\1/p' \
    <<<"$metrics")
[ -n "$n" ] && [ "$n" -ge 60 ] || fail "metrics do not count the refusals: '$n'"
sleep 0.2
a=$(kw_audit_count "$AUDIT" '"result":"rate-limited"')
[ "$a" = "$n" ] || fail "audit log: $a rate-limited lines, metrics: $n"
grep -q "is over its rate limit (1/s, bursts of 10)" "$KW_TMP/ks.log" || fail "no log line"
pass "$n refusals counted in keyward_requests_total{result=\"rate-limited\"} and in the audit log"
