#!/bin/bash
# The key server under valgrind memcheck (--workers 2): pings, signatures with RSA, ECDSA and
# Ed25519 keys, RSA decrypts (CLI and 0x01/0x08/0xA0 frames), malformed frames, a client that
# leaves with requests in flight; then SIGTERM. valgrind must report 0 errors and 0 bytes
# definitely lost, and exit 0 (99 means errors or definite leaks).
. "$(dirname "$0")/lib.sh"

if [ "${KW_SANITIZE:-OFF}" = ON ]; then
    echo "skip: ASan builds cannot run under valgrind"
    exit 0
fi
command -v valgrind >/dev/null || { echo "skip: valgrind not installed"; exit 0; }
[ -x "$KW_TESTS/kw_rawclient" ] || { echo "skip: kw_rawclient not built"; exit 0; }
[ -x "$KW_BIN/keyward" ] || { echo "skip: keyward CLI not built"; exit 0; }

make_pki
PORT=$(free_port)
VLOG=$KW_TMP/valgrind.log
start_bg ks valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --num-callers=30 --log-file="$VLOG" \
    "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$PORT" --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys" --workers 2 \
    --handshake-timeout-ms 3000 --idle-timeout-ms 3000 \
    --enable-op rsa-decrypt --enable-op rsa-decrypt-raw
KS_PID=$LAST_PID
wait_port "$PORT" 45 || fail "key server under valgrind did not start on port $PORT"
pass "key server started under valgrind memcheck"

W=$KW_TMP/work
mkdir -p "$W"
head -c 1000 /dev/urandom >"$W/msg"
kw_cli "$PORT" ping --count 2 >/dev/null || fail "ping"
for spec in rsa2048:rsa-pss-sha256 rsa2048:rsa-pkcs1-sha256 ecdsa-p256:ecdsa-sha256 \
    ecdsa-p384:ecdsa-sha384 ed25519:ed25519; do
    key=${spec%%:*}
    kw_cli "$PORT" sign --alg "${spec#*:}" --in "$W/msg" --out "$W/sig" \
        --key-cert "$PKI/certs/$key.crt" --timeout 20000 || fail "sign $spec"
done
openssl rand -out "$W/pt" 48
openssl x509 -in "$PKI/certs/rsa2048.crt" -pubkey -noout >"$W/rsa.pub"
openssl pkeyutl -encrypt -pubin -inkey "$W/rsa.pub" -in "$W/pt" -out "$W/ct"
kw_cli "$PORT" decrypt --in "$W/ct" --out "$W/pt2" --key-cert "$PKI/certs/rsa2048.crt" \
    --timeout 20000 || fail "decrypt"
cmp -s "$W/pt" "$W/pt2" || fail "decrypt: wrong plaintext"
pass "CLI: ping, 5 signatures (RSA PKCS#1/PSS, ECDSA P-256/P-384, Ed25519), 1 decrypt"

rawc() { kw_rawc "$PORT" --timeout-ms 20000 "$@"; }
RSA=$PKI/keys/rsa2048.crt
rawc --op 0x01 --key-cert "$RSA" --payload-file "$W/ct" --out "$W/dec" >/dev/null || fail "0x01"
rawc --op 0xa0 --key-cert "$RSA" --payload-file "$W/ct" --extra-hex 0303 --out "$W/dec" \
    >/dev/null || fail "0xA0 valid"
head -c 256 /dev/urandom >"$W/junk"
rawc --op 0xa0 --key-cert "$RSA" --payload-file "$W/junk" --extra-hex 0303 --out "$W/dec" \
    >/dev/null || fail "0xA0 bad padding"
rawc --op 0x08 --key-cert "$RSA" --payload-file "$W/ct" --out "$W/dec" --pad 1024 \
    >/dev/null || fail "0x08 padded"
rawc --op 0x05 --key-cert "$RSA" --payload-hex "$(printf '%064d' 0)" --count 20 --inflight 8 \
    >/dev/null || fail "20 RSA signatures, 8 in flight"
pass "frames: 0x01, 0xA0 (valid and bad padding), 0x08 padded, 20 x 0x05 with 8 in flight"

rawc --raw-hex 010000 --no-wait >/dev/null || fail "short header"
out=$(rawc --raw-hex 0100000800000005110001f112001041 --expect-close) || fail "item past end: $out"
out=$(rawc --raw-hex 0100000800000006110001f1110001f1 --expect-close) || fail "duplicate: $out"
out=$(rawc --raw-hex 0200000400000009110001f1 --expect-close) || fail "wrong version: $out"
rawc --op 0x99 --expect-error 5 >/dev/null || fail "unknown opcode"
rawc --op 0x05 --key-digest "$(printf '%064d' 7)" --payload-hex "$(printf '%064d' 0)" \
    --expect-error 2 >/dev/null || fail "unknown key"
rawc --op 0x15 --key-cert "$RSA" --payload-hex "$(printf '%064d' 0)" --expect-error 6 \
    >/dev/null || fail "ECDSA on an RSA key"
rawc --op 0x05 --key-cert "$RSA" --payload-hex "$(printf '%064d' 0)" --count 8 --inflight 8 \
    --no-wait >/dev/null || fail "leave with requests in flight"
head -c 300 /dev/urandom | rawc --plain --raw-hex "$(head -c 64 /dev/urandom | od -An -tx1 |
    tr -d ' \n')" --no-wait >/dev/null 2>&1 || true
out=$(rawc --op ping --payload-hex 616c697665) || fail "ping after bad input: $out"
case $out in *"payload=616c697665"*) ;; *) fail "bad pong after bad input: $out" ;; esac
pass "malformed frames (short header, item past end, duplicate, version, opcode, key, type), non-TLS bytes, a client leaving with 8 in flight; still serving"

sleep 1 # let the workers finish the abandoned requests
kill -TERM "$KS_PID"
rc=0
for _ in $(seq 300); do
    kill -0 "$KS_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$KS_PID" 2>/dev/null && fail "key server under valgrind did not exit within 30 s of SIGTERM"
wait "$KS_PID" || rc=$?
grep -q "ERROR SUMMARY: " "$VLOG" || fail "no valgrind summary (exit $rc): $(tail -n 20 "$VLOG")"
summary=$(grep "ERROR SUMMARY: " "$VLOG" | tail -n 1 | sed 's/^==[0-9]*== //')
lost=$({ grep "definitely lost:" "$VLOG" || true; } | tail -n 1 | sed "s/^==[0-9]*== *//")
if [ "$rc" != 0 ] || ! grep -q "ERROR SUMMARY: 0 errors" "$VLOG" ||
    { [ -n "$lost" ] && ! grep -q "definitely lost: 0 bytes" <<<"$lost"; }; then
    echo "---- valgrind log" >&2
    cat "$VLOG" >&2
    fail "valgrind: exit $rc, $summary, ${lost:-no leak line}"
fi
pass "SIGTERM: key server exited 0 under valgrind; $summary; ${lost:-no definite leaks reported}"
