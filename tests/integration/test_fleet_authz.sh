#!/bin/bash
# Per-edge authorisation: with rules allowing the edge (CN=edge) only the rsa2048 key, the edge
# signs with rsa2048, is refused ecdsa-p256 with error 0x40 (the CLI says "not-authorised"), and
# edge2 (no rule) is refused everything but ping; 0xA3 lists only the allowed keys; the audit log
# shows the denials. Also: spki: and sni: rules, YAML allow rules, rules on a forwarding key
# server, and bad rules refused at start.
. "$(dirname "$0")/lib.sh"

make_pki
make_peer_identity ks-a
W=$KW_TMP/w
mkdir -p "$W"
head -c 2000 /dev/urandom >"$W/msg"
openssl dgst -sha256 -binary "$W/msg" >"$W/dgst"
RSA_ID=$(kw_keyid "$PKI/certs/rsa2048.crt")
EC_ID=$(kw_keyid "$PKI/certs/ecdsa-p256.crt")

PORT=$(free_port)
start_keyserver ks "$PORT" --allow "cn:edge=file:rsa2048" --audit-log "$W/audit.log"
KS=$KS_PID

kw_cli "$PORT" sign --alg rsa-pkcs1-sha256 --key-cert "$PKI/certs/rsa2048.crt" --in "$W/msg" \
    --out "$W/sig" 2>"$W/err" || fail "edge must be allowed rsa2048: $(cat "$W/err")"
openssl x509 -in "$PKI/certs/rsa2048.crt" -noout -pubkey >"$W/pub.pem"
openssl dgst -sha256 -verify "$W/pub.pem" -signature "$W/sig" "$W/msg" >/dev/null 2>&1 ||
    fail "rsa2048 signature does not verify"
pass "edge (CN=edge) signs with rsa2048, signature verifies"

if kw_cli "$PORT" sign --alg ecdsa-sha256 --key-cert "$PKI/certs/ecdsa-p256.crt" --in "$W/msg" \
    --out "$W/sig" 2>"$W/err"; then
    fail "edge must not be allowed ecdsa-p256"
fi
grep -q "not-authorised" "$W/err" || fail "CLI did not say not-authorised: $(cat "$W/err")"
grep -q "may not use this key" "$W/err" || fail "CLI gave no advice: $(cat "$W/err")"
kw_rawc "$PORT" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$W/dgst" \
    --expect-error 0x40 >/dev/null || fail "ecdsa-p256 for edge must be error 0x40"
pass "edge refused ecdsa-p256 with 0x40; CLI: $(head -c 150 "$W/err")"

if kw_cli_as edge2 "$PORT" sign --alg rsa-pkcs1-sha256 --key-cert "$PKI/certs/rsa2048.crt" \
    --in "$W/msg" --out "$W/sig" 2>"$W/err"; then
    fail "edge2 must not be allowed rsa2048"
fi
grep -q "not-authorised" "$W/err" || fail "edge2: CLI did not say not-authorised"
kw_rawc_as edge2 "$PORT" --op 0xa2 --key-cert "$PKI/certs/rsa2048.crt" --expect-error 0x40 >/dev/null ||
    fail "edge2: 0xA2 of a key it may not use must be 0x40"
kw_rawc_as edge2 "$PORT" --op ping --payload-hex 6869 >/dev/null || fail "edge2: ping must be allowed"
pass "edge2 (no rule) refused rsa2048 sign and its 0xA2 with 0x40; ping still answered"

kw_rawc "$PORT" --op 0xa3 --out "$W/list" >/dev/null || fail "0xA3 for edge"
[ "$(od -An -v -tx1 "$W/list" | tr -d ' \n')" = "$RSA_ID" ] || fail "0xA3 for edge: not just rsa2048"
kw_rawc_as edge2 "$PORT" --op 0xa3 --out "$W/list2" >/dev/null || fail "0xA3 for edge2"
[ ! -s "$W/list2" ] || fail "0xA3 for edge2 must be empty"
pass "0xA3 lists only the allowed keys (edge: rsa2048; edge2: none)"

# The audit log (flushed within a second) shows the denials, by edge and key.
sleep 1.2
[ -s "$W/audit.log" ] || fail "no audit log"
python3 - "$W/audit.log" "$RSA_ID" "$EC_ID" <<'PY' || fail "audit log lacks the denials"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
rsa, ec = sys.argv[2], sys.argv[3]
def has(edge, key, op, result):
    return any(l["edge"] == edge and l["key"] == key and l["opcode"] == op and
               l["result"] == result for l in lines)
assert has("edge", rsa, "rsa-pkcs1-sha256", "ok"), "edge rsa ok"
assert has("edge", ec, "ecdsa-sha256", "denied"), "edge ecdsa denied"
assert has("edge2", rsa, "rsa-pkcs1-sha256", "denied"), "edge2 rsa denied"
assert has("edge2", rsa, "get-cert-chain", "denied"), "edge2 0xA2 denied"
assert not any(l["opcode"] == "ping" for l in lines), "ping audited"
PY
grep -q "edge 'edge2' is not authorised" "$KW_TMP/ks.log" || fail "no denial line in the server log"
pass "audit log: ok for edge/rsa2048, denied for edge/ecdsa-p256 and edge2/rsa2048; server log names edge2"
kill "$KS" 2>/dev/null || true

# spki: and sni: rules, and a YAML allow list: edge2 by its public key, for sni:*.example keys.
EDGE2_SPKI=$(kw_keyid "$PKI/edge2.crt")
cat >"$W/ks.yaml" <<YAML
allow:
  - spki: "sha256:$EDGE2_SPKI"
    keys: ["sni:ecdsa-*.example", "sni:*.example"]
  - cn: edge
    keys: ["sha256:$EC_ID"]
YAML
# "sni:ecdsa-*.example" is not a valid pattern (the wildcard is a whole label): refused at start.
PORT2=$(free_port)
if "$KW_BIN/keyward-keyserver" --config "$W/ks.yaml" --listen "127.0.0.1:$PORT2" \
    --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" \
    --keys "$PKI/keys" >"$W/bad.out" 2>&1; then
    fail "a bad sni pattern must be refused at start"
fi
grep -q "allow rule 1" "$W/bad.out" || fail "bad rule: no clear message: $(cat "$W/bad.out")"
sed -i 's/"sni:ecdsa-\*.example", //' "$W/ks.yaml"
start_bg ks2 "$KW_BIN/keyward-keyserver" --config "$W/ks.yaml" --listen "127.0.0.1:$PORT2" \
    --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys"
wait_port "$PORT2" 15 || fail "key server with YAML allow rules did not start"
kw_cli_as edge2 "$PORT2" sign --alg ecdsa-sha256 --key-cert "$PKI/certs/ecdsa-p256.crt" --in "$W/msg" \
    --out "$W/sig" 2>"$W/err" || fail "edge2 by spki, key by sni:*.example: $(cat "$W/err")"
kw_rawc "$PORT2" --op 0x05 --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$W/dgst" \
    --expect-error 0x40 >/dev/null || fail "edge may only use ecdsa-p256 here"
kw_rawc "$PORT2" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$W/dgst" \
    >/dev/null || fail "edge by cn, key by sha256"
pass "YAML allow rules: edge2 by spki with sni:*.example; edge by cn with sha256:ID only"

# Rules on a forwarding key server (no keys, upstream B): checked before forwarding.
PORT_B=$(free_port)
PORT_A=$(free_port)
start_ks_as ks-b "$PORT_B" keyserver --keys "$PKI/keys"
start_ks_as ks-a "$PORT_A" ks-a --upstream "127.0.0.1:$PORT_B" --allow "cn:edge=sha256:$RSA_ID"
kw_rawc "$PORT_A" --op 0x05 --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$W/dgst" \
    >/dev/null || fail "forwarder: edge allowed rsa2048 by sha256"
kw_rawc "$PORT_A" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$W/dgst" \
    --expect-error 0x40 >/dev/null || fail "forwarder: ecdsa-p256 must be 0x40 at A"
pass "a forwarding key server enforces its rules before forwarding (0x40 at A)"

# Bad flag forms are refused with exit status 2.
for bad in "edge=*" "cn:edge=" "cn:edge=sha256:12" "cn:edge=bogus:x" "spki:zz=*"; do
    rc=0
    "$KW_BIN/keyward-keyserver" --allow "$bad" --cert "$PKI/keyserver.crt" \
        --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --listen "127.0.0.1:$(free_port)" \
        >"$W/bad.out" 2>&1 || rc=$?
    [ "$rc" = 2 ] || fail "--allow '$bad' must be refused at start (got $rc): $(cat "$W/bad.out")"
done
pass "malformed --allow rules are refused at start (exit 2)"
