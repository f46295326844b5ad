#!/bin/bash
# Fair scheduling across connections (issue 20, finding 5): one connection keeping 256 RSA-2048
# signatures in flight must not starve another connection's ECDSA signatures. The victim's p50
# latency under the flood must stay within a few RSA operations' time (the bound below), where a
# FIFO job queue made it wait behind the whole flood (≈110 ms).
# Prints the numbers: ECDSA p50 alone, RSA p50 alone, ECDSA p50/p90 under the flood.
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT" --workers 2
ABUSE=(python3 "$KW_SOURCE_DIR/tests/integration/tools/kw_abuse.py")
TLS=(--server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" --key "$PKI/edge.key" --ca "$PKI/ca.crt")
EC_ID=$(kw_keyid "$PKI/certs/ecdsa-p256.crt")
RSA_ID=$(kw_keyid "$PKI/certs/rsa2048.crt")
head -c 32 /dev/urandom >"$KW_TMP/dgst"

probe() { # probe KEY_ID OPCODE COUNT -> "p50_us X p90_us Y max_us Z errors E"
    "${ABUSE[@]}" latency "${TLS[@]}" --digest "$1" --opcode "$2" --count "$3" --gap-ms 2
}
field() { sed -n "s/.*$1 \([0-9]*\).*/\1/p" <<<"$2"; }

probe_under_rsa_flood "$PORT"

p50=$(field p50_us "$ec_flood")
rsa=$(field p50_us "$rsa_alone")
ec=$(field p50_us "$ec_alone")
[ "$(field errors "$ec_flood")" = 0 ] || fail "errors under the flood: $ec_flood"
# A few RSA operations (4 lone RSA round trips) on top of the ECDSA round trip, at least 5 ms:
# the machine is shared and two cores serve the flood, the probe and the key server.
bound=$((ec + 4 * rsa))
[ "$bound" -ge 5000 ] || bound=5000
[ "$p50" -le "$bound" ] ||
    fail "ECDSA p50 under a 256-deep RSA flood on another connection: $p50 us (bound $bound us)"
pass "ECDSA p50 under the flood $p50 us (alone $ec us; RSA alone $rsa us; bound $bound us)"
