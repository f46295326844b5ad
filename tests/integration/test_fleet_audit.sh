#!/bin/bash
# The audit log: N operations give exactly N JSON lines (pings give none), each valid JSON with the
# documented keys and values, without any payload or result bytes; lines are on disk within about
# a second while the server keeps running, SIGHUP reopens it after rotation, and the rest is
# written at shutdown (SIGTERM).
. "$(dirname "$0")/lib.sh"

make_pki
W=$KW_TMP/w
mkdir -p "$W"
AUDIT=$W/audit.log
PORT=$(free_port)
start_keyserver ks "$PORT" --audit-log "$AUDIT"
KS=$KS_PID

head -c 4000 /dev/urandom >"$W/msg"
openssl dgst -sha256 -binary "$W/msg" >"$W/dgst"
EC_ID=$(kw_keyid "$PKI/certs/ecdsa-p256.crt")
RSA_ID=$(kw_keyid "$PKI/certs/rsa2048.crt")

# 40 ECDSA signs with client IP and SNI items, 10 in flight.
kw_rawc "$PORT" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$W/dgst" \
    --client-ip 192.0.2.7 --sni www.example.com --count 40 --inflight 10 \
    | kw_grep "40 replies, 0 unexpected" || fail "40 ECDSA signs"
# 3 RSA decrypts (0xA0: the answer is a pre-master secret) with an IPv6 client IP, and their PMS.
{ printf '\003\003'; printf 'PMS-%042d' 1; } >"$W/pms" # TLS 1.2 version first, 48 bytes
openssl x509 -in "$PKI/certs/rsa2048.crt" -noout -pubkey >"$W/rsa.pub"
openssl pkeyutl -encrypt -pubin -inkey "$W/rsa.pub" -in "$W/pms" -out "$W/ct" 2>/dev/null ||
    fail "encrypt a PMS"
for i in 1 2 3; do
    kw_rawc "$PORT" --op 0xa0 --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$W/ct" \
        --extra-hex 0303 --client-ip 2001:db8::1 --out "$W/pms.out" >/dev/null ||
        fail "0xA0 decrypt"
    cmp -s "$W/pms" "$W/pms.out" || fail "0xA0 returned a different PMS"
done
# 2 requests for an unknown key, 1 with an SNI to escape (quote, backslash, control, bad UTF-8),
# 1 certificate chain, and 5 pings (not audited).
for i in 1 2; do
    kw_rawc "$PORT" --op 0x05 --key-digest "$(printf '%064d' 3)" --payload-file "$W/dgst" \
        --expect-error 2 >/dev/null || fail "unknown key"
done
kw_rawc "$PORT" --op 0xa2 --sni $'we"ird\\name\x01\xff.example' --expect-error 9 >/dev/null ||
    fail "0xA2 with an odd SNI"
kw_rawc "$PORT" --op 0xa2 --key-cert "$PKI/certs/rsa2048.crt" --out "$W/chain" >/dev/null ||
    fail "0xA2"
kw_rawc "$PORT" --op ping --payload-hex 70696e67 --count 5 | kw_grep "5 replies, 0 unexpected" ||
    fail "5 pings"
N=$((40 + 3 + 2 + 1 + 1))

# On disk within ~1 s, while the server runs.
t0=$(date +%s%N)
while [ "$(wc -l <"$AUDIT" 2>/dev/null || echo 0)" -lt "$N" ]; do
    [ $((($(date +%s%N) - t0) / 1000000)) -lt 1500 ] || break
    sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
kill -0 "$KS" 2>/dev/null || fail "the key server is not running"
lines=$(wc -l <"$AUDIT")
[ "$lines" = "$N" ] || fail "expected $N audit lines after ${ms} ms, found $lines"
pass "$N operations -> exactly $N audit lines, on disk ${ms} ms after the last one (server running)"

python3 - "$AUDIT" "$EC_ID" "$RSA_ID" <<'PY' || fail "audit lines are not as documented"
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
ec, rsa = sys.argv[2], sys.argv[3]
keys = ["time", "edge", "client_ip", "sni", "key", "opcode", "result", "latency_us"]
for l in lines:
    assert list(l.keys()) == keys, l
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", l["time"]), l
    assert l["edge"] == "edge", l
    assert isinstance(l["latency_us"], int) and 0 <= l["latency_us"] < 10_000_000, l
ops = [(l["opcode"], l["result"]) for l in lines]
assert ops.count(("ecdsa-sha256", "ok")) == 40, ops
assert ops.count(("tls-rsa-decrypt", "ok")) == 3, ops
assert ops.count(("rsa-pkcs1-sha256", "key-not-found")) == 2, ops
assert ops.count(("get-cert-chain", "cert-not-found")) == 1, ops
assert ops.count(("get-cert-chain", "ok")) == 1, ops
for l in lines:
    if l["opcode"] == "ecdsa-sha256":
        assert l["client_ip"] == "192.0.2.7" and l["sni"] == "www.example.com" and l["key"] == ec, l
    if l["opcode"] == "tls-rsa-decrypt":
        assert l["client_ip"] == "2001:db8::1" and l["sni"] == "" and l["key"] == rsa, l
    if l["result"] == "cert-not-found":
        assert l["sni"] == 'we"ird\\name\x01\ufffd.example', repr(l["sni"])
        assert l["key"] == "" and l["client_ip"] == "", l
PY
pass "every line is JSON with time (RFC 3339 UTC, ms), edge, client_ip, sni, key, opcode, result, latency_us; odd SNI escaped"

# No payload or result bytes: digest, ciphertext, PMS, in hex (either case), base64 or raw.
python3 - "$AUDIT" "$W/dgst" "$W/ct" "$W/pms" <<'PY' || fail "a payload leaked into the audit log"
import base64, sys
log = open(sys.argv[1], "rb").read()
for f in sys.argv[2:]:
    b = open(f, "rb").read()
    for form in (b[:16], b.hex()[:24].encode(), b.hex().upper()[:24].encode(),
                 base64.b64encode(b)[:16]):
        assert form not in log, (f, form)
PY
pass "no payload (digest, ciphertext) or result (PMS) bytes in the audit log"

# Rotation: rename the file, SIGHUP; new lines go to a new file at the old path.
mv "$AUDIT" "$AUDIT.1"
kill -HUP "$KS"
wait_for_line "$KW_TMP/ks.log" "audit log $AUDIT reopened" "no reopen after SIGHUP" 3
kw_rawc "$PORT" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$W/dgst" \
    --count 3 | kw_grep "3 replies" || fail "3 signs after rotation"
sleep 1.2
# The SIGHUP also reloaded: its lines (one per part, "event":"reload") go to the new file too.
[ "$(grep -c '"opcode"' "$AUDIT")" = 3 ] ||
    fail "after rotation: expected 3 operation lines in the new file: $(cat "$AUDIT")"
[ "$(grep -c '"event":"reload","part":"keys","result":"applied"' "$AUDIT")" = 1 ] ||
    fail "after rotation: no reload line for the keys in the new file: $(cat "$AUDIT")"
[ "$(wc -l <"$AUDIT")" = 5 ] || fail "after rotation: expected 3 + 2 reload lines: $(cat "$AUDIT")"
[ "$(wc -l <"$AUDIT.1")" = "$N" ] || fail "after rotation: the old file changed"
pass "log rotation: after mv + SIGHUP the next 3 lines (and the reload's 2) go to a new $AUDIT"

# Lines still in the buffer are written at shutdown.
kw_rawc "$PORT" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$W/dgst" \
    --count 7 | kw_grep "7 replies" || fail "7 more signs"
kill -TERM "$KS"
rc=0
wait "$KS" || rc=$?
[ "$rc" = 0 ] || fail "key server exit status $rc after SIGTERM"
lines=$(grep -c '"opcode"' "$AUDIT")
[ "$lines" = 10 ] || fail "after SIGTERM expected 3 + 7 operation lines, found $lines"
pass "SIGTERM right after 7 more operations: all 7 lines written at shutdown"
