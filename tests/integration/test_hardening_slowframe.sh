#!/bin/bash
# Slowloris on frames (issue 20, finding 7): a frame must complete within --frame-timeout-ms of
# its first byte, however often bytes arrive. A client that sends a frame header and then one
# byte every 0.4 s (each byte in its own TLS record, or the raw bytes of one TLS record one at a
# time) is cut after the frame deadline, although it is never idle for --idle-timeout-ms.
# A good client next to it is served, and normal pipelined traffic is not affected.
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT" --idle-timeout-ms 2000 --frame-timeout-ms 1500
ABUSE=(python3 "$KW_SOURCE_DIR/tests/integration/tools/kw_abuse.py")
TLS=(--server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" --key "$PKI/edge.key" --ca "$PKI/ca.crt")

for mode in plain record; do
    out=$("${ABUSE[@]}" dribble "${TLS[@]}" --mode "$mode" --every-ms 400 --max-s 6)
    ms=$(sed -n 's/^closed after \([0-9]*\) ms$/\1/p' <<<"$out")
    [ -n "$ms" ] || fail "$mode: a frame dribbled one byte every 0.4 s is still open: $out"
    [ "$ms" -ge 1000 ] && [ "$ms" -le 3500 ] ||
        fail "$mode: closed after $ms ms, expected about 1500 (the frame deadline)"
    pass "$mode: a frame dribbled one byte every 0.4 s is cut after $ms ms (--frame-timeout-ms 1500)"
done
grep -q "frame not complete within 1500 ms" "$KW_TMP/ks.log" || fail "no log line names the cut"

# Pipelined traffic with frames split over reads is fine, and a good client is still served.
head -c 32 /dev/urandom >"$KW_TMP/dgst"
kw_rawc "$PORT" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$KW_TMP/dgst" \
    --pad 1024 --count 2000 --inflight 64 | kw_grep "2000 replies, 0 unexpected" ||
    fail "2000 padded pipelined requests"
kw_rawc "$PORT" --op ping --payload-hex 6869 >/dev/null || fail "ping after the slow frames"
pass "2000 pipelined 1024-byte frames and a ping are served"
