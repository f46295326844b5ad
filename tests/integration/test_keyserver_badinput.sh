#!/bin/bash
# Bad input against the real key server: malformed frames, unknown opcodes and keys, wrong
# opcodes for a key type, clients without a valid certificate, bytes that are not TLS, silent
# and half-written clients, clients that leave with requests in flight, more requests in flight
# than the server allows. After each, a well-behaved client must still be served.
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT" --handshake-timeout-ms 700 --idle-timeout-ms 1500 --max-inflight 8 \
    --log-level debug

rawc() {
    "$KW_TESTS/kw_rawclient" --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" "$@"
}
alive() {
    local out
    out=$(rawc --op ping --payload-hex 616c697665) || fail "after $1: ping failed: $out"
    case $out in *"payload=616c697665"*) ;; *) fail "after $1: bad pong: $out" ;; esac
    kill -0 "$KS_PID" 2>/dev/null || fail "after $1: key server died"
}
expect_out() { # WHAT PATTERN OUTPUT
    case $3 in *$2*) ;; *) fail "$1: expected '$2' in: $3" ;; esac
}
RSA=$PKI/keys/rsa2048.crt
D32=$(printf '%064d' 0)

out=$(rawc --raw-hex 010000 --no-wait) || fail "short header: $out"
alive "short header then close"
pass "short header then close"

# header announces 100 body bytes, 10 arrive: the frame never completes -> idle timeout
out=$(rawc --raw-hex 0100006400000007112233445566778899aa --expect-close --timeout-ms 6000) ||
    fail "body past end: server did not close: $out"
expect_out "body past end" "closed by server" "$out"
alive "body length past the end"
pass "body length past the end: connection cut by the idle timeout"

# payload item claims 16 bytes, 1 follows: format error with the id, then close
out=$(rawc --raw-hex 0100000800000005110001f112001041 --expect-close) ||
    fail "item past end: $out"
expect_out "item past end" "id=5 error=0x07" "$out"
expect_out "item past end" "closed by server" "$out"
alive "item length past the end"
pass "item length past the end: 0x07 format error, then close"

# duplicate opcode item: format error, close
out=$(rawc --raw-hex 0100000800000006110001f1110001f1 --expect-close) || fail "duplicate: $out"
expect_out "duplicate item" "id=6 error=0x07" "$out"
alive "duplicate item"
pass "duplicate item: 0x07 then close"

out=$(rawc --raw-hex 0200000400000009110001f1 --expect-close) || fail "version: $out"
expect_out "wrong version" "id=9 error=0x04" "$out"
alive "wrong version"
pass "wrong major version: 0x04 then close"

out=$(rawc --raw-hex 010000070000000a12000411223344 --expect-error 7) || fail "no opcode: $out"
expect_out "no opcode" "id=10 error=0x07" "$out"
rawc --op 0x99 --expect-error 5 --count 3 >/dev/null || fail "unknown opcode must be 0x05"
rawc --op 0xf0 --expect-error 5 >/dev/null || fail "opcode 0xF0 as a request must be 0x05"
alive "unknown opcode"
pass "unknown opcode: 0x05 (connection kept); missing opcode: 0x07"

rawc --op 0x05 --key-digest "$(printf '%064d' 7)" --payload-hex "$D32" --expect-error 2 \
    >/dev/null || fail "unknown key must be 0x02"
rawc --op 0x05 --payload-hex "$D32" --expect-error 2 >/dev/null || fail "no key id must be 0x02"
rawc --op 0x05 --ski "$(printf '%040d' 1)" --payload-hex "$D32" --expect-error 2 >/dev/null ||
    fail "unknown SKI must be 0x02"
alive "unknown key"
pass "unknown key / no key id: 0x02"

rawc --op 0x15 --key-cert "$RSA" --payload-hex "$D32" --expect-error 6 >/dev/null ||
    fail "ECDSA on RSA must be 0x06"
rawc --op 0x05 --key-cert "$PKI/keys/ed25519.crt" --payload-hex "$D32" --expect-error 6 \
    >/dev/null || fail "RSA on Ed25519 must be 0x06"
rawc --op 0x05 --key-cert "$RSA" --payload-hex "${D32}00" --expect-error 7 >/dev/null ||
    fail "33-byte SHA-256 digest must be 0x07"
rawc --op 0x05 --key-cert "$RSA" --expect-error 7 >/dev/null || fail "no payload must be 0x07"
alive "wrong opcode for the key"
pass "opcode not for the key type: 0x06; wrong digest length / no payload: 0x07"

out=$("$KW_TESTS/kw_rawclient" --server "127.0.0.1:$PORT" --ca "$PKI/ca.crt" --op ping 2>&1) &&
    fail "a client without a certificate was served: $out"
expect_out "no client certificate" "alert certificate required" "$out"
alive "client without certificate"
pass "client without a certificate refused at the handshake"

out=$("$KW_TESTS/kw_rawclient" --server "127.0.0.1:$PORT" --cert "$PKI/rogue.crt" \
    --key "$PKI/rogue.key" --ca "$PKI/ca.crt" --op ping 2>&1) &&
    fail "a client of the rogue CA was served: $out"
expect_out "rogue client" "alert unknown ca" "$out"
alive "rogue client"
pass "client certificate from another CA refused"

junk=$(head -c 300 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
out=$(rawc --plain --raw-hex "16030100ff$junk" --expect-close --timeout-ms 5000) ||
    fail "junk TLS: $out"
out=$(rawc --plain --raw-hex "474554202f20485454502f312e310d0a0d0a" --expect-close \
    --timeout-ms 5000) || fail "HTTP: $out"
alive "random bytes"
pass "random bytes / HTTP instead of TLS: connection closed"

out=$(rawc --silent --timeout-ms 5000) || fail "silent client not cut: $out"
ms=$(echo "$out" | sed -n 's/closed by server after \([0-9]*\) ms.*/\1/p')
[ -n "$ms" ] && [ "$ms" -ge 500 ] && [ "$ms" -le 3000 ] ||
    fail "silent client: closed after '$ms' ms, expected about 700"
alive "silent client"
pass "silent client cut after the handshake timeout ($ms ms)"

out=$(rawc --op ping --count 1 --expect-close --timeout-ms 6000) || fail "idle: $out"
expect_out "idle client" "closed by server" "$out"
alive "idle client"
pass "idle client cut after the idle timeout"

# Leaving with requests in flight: workers finish after the connection is gone.
digest=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
for _ in 1 2 3; do
    rawc --op 0x05 --key-cert "$RSA" --payload-hex "$digest" --count 64 --no-wait >/dev/null ||
        fail "no-wait client"
done
alive "clients leaving with requests in flight"
pass "clients leaving with requests in flight"

# More in flight than --max-inflight 8: reading pauses and resumes, every request is answered.
out=$(rawc --op 0x15 --key-cert "$PKI/keys/ecdsa-p256.crt" --payload-hex "$digest" --count 400 \
    --inflight 200) || fail "back-pressure: $out"
expect_out "back-pressure" "400 replies, 0 unexpected" "$out"
alive "back-pressure"
pass "200 in flight against --max-inflight 8: all 400 answered"

# Concurrent bad and good clients: the good one is unaffected.
bad_pids=()
for _ in 1 2 3 4 5; do
    rawc --plain --raw-hex "$junk" --expect-close --timeout-ms 5000 >/dev/null &
    bad_pids+=($!)
    rawc --raw-hex 0100ffff00000001 --no-wait >/dev/null &
    bad_pids+=($!)
done
rawc --op 0x15 --key-cert "$PKI/keys/ecdsa-p256.crt" --payload-hex "$digest" --count 100 \
    --inflight 10 | kw_grep "100 replies, 0 unexpected" || fail "good client among bad ones"
for pid in "${bad_pids[@]}"; do wait "$pid" || true; done
alive "mixed clients"
pass "a good client is served while bad clients come and go"

if grep -E "AddressSanitizer|runtime error|LeakSanitizer" "$KW_TMP/ks.log"; then
    fail "sanitizer report in the key server log"
fi
kill -TERM "$KS_PID"
for _ in $(seq 50); do kill -0 "$KS_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$KS_PID" 2>/dev/null && fail "key server did not stop on SIGTERM"
wait "$KS_PID" || fail "key server exited with status $? on SIGTERM"
grep -q "stopped" "$KW_TMP/ks.log" || fail "no clean shutdown line"
pass "SIGTERM: clean shutdown, exit status 0"
