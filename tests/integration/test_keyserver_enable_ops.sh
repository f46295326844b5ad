#!/bin/bash
# Least-privilege operations (issue 20, item 2). By default a key server performs only the
# TLS-safe set: signatures, 0xA0, 0xA1, 0xA2, 0xA3, ping. The legacy 0x01 (PKCS#1 decrypt, a
# padding oracle) and 0x08 (raw RSA, forges any PKCS#1 signature) are refused with 0x40, audited
# as denied and logged, until `--enable-op rsa-decrypt` / `rsa-decrypt-raw` turn them on. An allow
# rule's `ops:` narrows what it grants; a rule cannot grant what the server does not enable. A
# forwarding key server applies its own set before forwarding.
. "$(dirname "$0")/lib.sh"

make_pki
make_peer_identity ks-a
W=$KW_TMP/w
mkdir -p "$W"
RSA=$PKI/certs/rsa2048.crt
openssl x509 -in "$RSA" -noout -pubkey >"$W/rsa.pub"
openssl rand -hex 24 >"$W/pt"
openssl pkeyutl -encrypt -pubin -inkey "$W/rsa.pub" -in "$W/pt" -out "$W/ct" 2>/dev/null
printf 'least privilege' | openssl dgst -sha256 -binary >"$W/dgst"

# ---- the default set ----
PORT=$(free_port)
start_keyserver ks "$PORT" --audit-log "$W/audit.log"
KS=$KS_PID
kw_rawc "$PORT" --op 0x01 --key-cert "$RSA" --payload-file "$W/ct" --expect-error 0x40 \
    >/dev/null || fail "default: 0x01 must be refused with 0x40"
kw_rawc "$PORT" --op 0x08 --key-cert "$RSA" --payload-file "$W/ct" --expect-error 0x40 \
    >/dev/null || fail "default: 0x08 must be refused with 0x40"
if kw_cli "$PORT" decrypt --in "$W/ct" --out "$W/dec" --key-cert "$RSA" 2>"$W/err"; then
    fail "default: keyward decrypt must be refused"
fi
grep -q -- "--enable-op rsa-decrypt" "$W/err" || fail "the CLI gave no advice: $(cat "$W/err")"
kw_rawc "$PORT" --op 0xa0 --key-cert "$RSA" --payload-file "$W/ct" --extra-hex 0303 \
    --out "$W/pms" >/dev/null || fail "default: 0xA0 must be served"
kw_rawc "$PORT" --op 0x05 --key-cert "$RSA" --payload-file "$W/dgst" >/dev/null ||
    fail "default: signatures must be served"
kw_rawc "$PORT" --op 0xa2 --key-cert "$RSA" --out "$W/chain" >/dev/null || fail "default: 0xA2"
kw_rawc "$PORT" --op 0xa3 --out "$W/list" >/dev/null || fail "default: 0xA3"
[ "$(stat -c %s "$W/list")" = $((32 * 7)) ] || fail "default: 0xA3 must list the 7 keys"
grep -q "operations enabled: default$" "$KW_TMP/ks.log" || fail "the enabled operations are not logged"
grep -q "not authorised for operation rsa-decrypt: it is not enabled on this key server (--enable-op rsa-decrypt)" \
    "$KW_TMP/ks.log" || fail "the refusal is not explained in the log"
sleep 1.2
python3 - "$W/audit.log" <<'PY' || fail "the audit log lacks the refused operations"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
res = {(l["opcode"], l["result"]) for l in lines}
assert ("rsa-decrypt", "denied") in res, res
assert ("rsa-decrypt-raw", "denied") in res, res
assert ("tls-rsa-decrypt", "ok") in res, res
PY
pass "default: 0x01 and 0x08 refused with 0x40 (audited 'denied', logged, CLI advice); 0xA0, signatures, 0xA2, 0xA3 served"
kill "$KS" 2>/dev/null || true

# ---- --enable-op ----
PORT=$(free_port)
start_keyserver ks1 "$PORT" --enable-op rsa-decrypt
kw_cli "$PORT" decrypt --in "$W/ct" --out "$W/dec" --key-cert "$RSA" 2>"$W/err" ||
    fail "--enable-op rsa-decrypt: decrypt refused: $(cat "$W/err")"
cmp -s "$W/pt" "$W/dec" || fail "--enable-op rsa-decrypt: wrong plaintext"
kw_rawc "$PORT" --op 0x08 --key-cert "$RSA" --payload-file "$W/ct" --expect-error 0x40 \
    >/dev/null || fail "--enable-op rsa-decrypt must not enable 0x08"
grep -q "operations enabled: default, rsa-decrypt$" "$KW_TMP/ks1.log" || fail "ks1: enabled set not logged"
kill "$KS_PID" 2>/dev/null || true
if "$KW_BIN/keyward-keyserver" --enable-op rsa-sign --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --listen "127.0.0.1:$(free_port)" \
    >"$W/bad.out" 2>&1; then
    fail "--enable-op with an unknown name must be refused"
fi
grep -q "known operations: default, signatures" "$W/bad.out" || fail "no list of names: $(cat "$W/bad.out")"
pass "--enable-op rsa-decrypt enables 0x01 only; an unknown name is refused with the list of names"

# ---- per rule: ops ----
cat >"$W/ks.yaml" <<YAML
listen: "127.0.0.1:$(free_port)"
enable_ops: [rsa-decrypt, rsa-raw-decrypt]
allow:
  - cn: edge
    keys: ["*"]
    ops: [signatures]
  - cn: edge2
    keys: [rsa2048]
    ops: [default, rsa-decrypt]
YAML
PORT=$(sed -n 's/^listen: "127.0.0.1:\([0-9]*\)"/\1/p' "$W/ks.yaml")
start_bg ks2 "$KW_BIN/keyward-keyserver" --config "$W/ks.yaml" --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys"
wait_port "$PORT" 15 || fail "key server with rule ops did not start"
kw_rawc "$PORT" --op 0x05 --key-cert "$RSA" --payload-file "$W/dgst" >/dev/null ||
    fail "rule ops: edge may sign"
for op in 0x01 0xa0; do
    kw_rawc "$PORT" --op "$op" --key-cert "$RSA" --payload-file "$W/ct" --extra-hex 0303 \
        --expect-error 0x40 >/dev/null || fail "rule ops: edge (signatures only) must get 0x40 for $op"
done
kw_rawc "$PORT" --op 0xa2 --key-cert "$RSA" --expect-error 0x40 >/dev/null ||
    fail "rule ops: edge (signatures only) must get 0x40 for 0xA2"
kw_rawc "$PORT" --op 0xa3 --out "$W/list" >/dev/null || fail "rule ops: 0xA3 for edge"
[ ! -s "$W/list" ] || fail "rule ops: 0xA3 must list nothing for an edge without list-keys"
kw_rawc_as edge2 "$PORT" --op 0x01 --key-cert "$RSA" --payload-file "$W/ct" --out "$W/dec" >/dev/null ||
    fail "rule ops: edge2 may use 0x01"
cmp -s "$W/pt" "$W/dec" || fail "rule ops: edge2 0x01 wrong plaintext"
kw_rawc_as edge2 "$PORT" --op 0x08 --key-cert "$RSA" --payload-file "$W/ct" --expect-error 0x40 \
    >/dev/null || fail "rule ops: edge2 must get 0x40 for 0x08 (enabled here, not in its rule)"
kw_rawc_as edge2 "$PORT" --op 0xa0 --key-cert "$RSA" --payload-file "$W/ct" --extra-hex 0303 \
    >/dev/null || fail "rule ops: edge2 may use 0xA0 (default)"
pass "rule ops: edge (signatures) refused 0x01/0xA0/0xA2, lists nothing; edge2 (default + rsa-decrypt) decrypts, refused 0x08"
kill "$KS_PID" 2>/dev/null || true

sed -i 's/^enable_ops:.*$/enable_ops: [rsa-decrypt-raw]/' "$W/ks.yaml"
rc=0
"$KW_BIN/keyward-keyserver" --config "$W/ks.yaml" --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys" >"$W/bad.out" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a rule granting an operation not enabled must stop the server (got $rc)"
grep -q "allow rule 2: ops: rsa-decrypt not enabled on this key server" "$W/bad.out" ||
    fail "no clear message: $(cat "$W/bad.out")"
pass "a rule granting rsa-decrypt on a server without it is refused at start: $(grep -o 'allow rule 2: ops: [^(]*' "$W/bad.out")"

# ---- a forwarding key server applies its own set ----
PORT_B=$(free_port)
PORT_A=$(free_port)
start_ks_as ks-b "$PORT_B" keyserver --keys "$PKI/keys" --enable-op rsa-decrypt
start_ks_as ks-a "$PORT_A" ks-a --upstream "127.0.0.1:$PORT_B"
kw_rawc "$PORT_A" --op 0x01 --key-cert "$RSA" --payload-file "$W/ct" --expect-error 0x40 \
    >/dev/null || fail "forwarder without rsa-decrypt must refuse 0x01 itself"
kw_rawc "$PORT_A" --op 0xa0 --key-cert "$RSA" --payload-file "$W/ct" --extra-hex 0303 \
    >/dev/null || fail "forwarder: 0xA0 must be forwarded"
pass "a forwarding key server refuses 0x01 (0x40) unless it enables it too; 0xA0 forwarded"
