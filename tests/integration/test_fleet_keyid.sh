#!/bin/bash
# A request names exactly one key, and that key is the one authorised and used (issue 20, item 1).
# With `--allow cn:edge=ski:<SKI of rsa2048>`, a request carrying digest = ecdsa-p256 and SKI =
# rsa2048 used to pass the check (the SKI matched) and be signed with the ECDSA key (the store
# looked up the digest first). Now every key id a request carries (digest 0x01, SKI 0x04, and for
# 0xA2 the SNI 0x02) must name the same key, else 0x07 (format); the key so resolved is
# authorised and used. Checked on a key server holding the keys and through a chain (A without
# keys, --upstream B), where A forwards only the one id it authorised on and refuses a request
# with several ids it cannot check (0x07).
. "$(dirname "$0")/lib.sh"

make_pki
make_peer_identity ks-a
W=$KW_TMP/w
mkdir -p "$W"
printf 'which key signs this?' | openssl dgst -sha256 -binary >"$W/dgst"
RSA_ID=$(kw_keyid "$PKI/certs/rsa2048.crt")
EC_ID=$(kw_keyid "$PKI/certs/ecdsa-p256.crt")
ski_of() {
    openssl x509 -in "$1" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' :' |
        tr 'A-F' 'a-f'
}
RSA_SKI=$(ski_of "$PKI/certs/rsa2048.crt")
EC_SKI=$(ski_of "$PKI/certs/ecdsa-p256.crt")
[ ${#RSA_SKI} = 40 ] && [ ${#EC_SKI} = 40 ] || fail "cannot read the test certificates' SKIs"

# attacks PORT WHERE: the mixed-id requests an edge allowed only ski:RSA may try; all refused.
attacks() {
    local port=$1 where=$2
    if kw_rawc "$port" --op 0x15 --key-digest "$EC_ID" --ski "$RSA_SKI" \
        --payload-file "$W/dgst" --out "$W/sig" >"$W/out" 2>&1; then
        fail "$where: digest=ECDSA + SKI=RSA was signed ($(stat -c %s "$W/sig") bytes) with the ECDSA key"
    fi
    kw_rawc "$port" --op 0x15 --key-digest "$EC_ID" --ski "$RSA_SKI" --payload-file "$W/dgst" \
        --expect-error 0x07 >/dev/null || fail "$where: digest=ECDSA + SKI=RSA must be 0x07"
    kw_rawc "$port" --op 0x05 --key-digest "$EC_ID" --ski "$RSA_SKI" --payload-file "$W/dgst" \
        --expect-error 0x07 >/dev/null || fail "$where: RSA sign, digest=ECDSA + SKI=RSA must be 0x07"
    kw_rawc "$port" --op 0xa2 --key-digest "$EC_ID" --ski "$RSA_SKI" --expect-error 0x07 \
        >/dev/null || fail "$where: 0xA2 digest=ECDSA + SKI=RSA must be 0x07"
    kw_rawc "$port" --op 0xa1 --key-digest "$EC_ID" --ski "$RSA_SKI" --payload-file "$W/dgst" \
        --expect-error 0x07 >/dev/null || fail "$where: 0xA1 digest=ECDSA + SKI=RSA must be 0x07"
    kw_rawc "$port" --op 0xa0 --key-digest "$EC_ID" --ski "$RSA_SKI" --payload-file "$W/dgst" \
        --extra-hex 0303 --expect-error 0x07 >/dev/null ||
        fail "$where: 0xA0 digest=ECDSA + SKI=RSA must be 0x07"
    kw_rawc "$port" --op 0x08 --key-digest "$EC_ID" --ski "$RSA_SKI" --payload-file "$W/dgst" \
        --expect-error 0x07 >/dev/null || fail "$where: 0x08 digest=ECDSA + SKI=RSA must be 0x07"
    # The ECDSA key by its own ids stays refused (0x40).
    kw_rawc "$port" --op 0x15 --key-digest "$EC_ID" --payload-file "$W/dgst" --expect-error 0x40 \
        >/dev/null || fail "$where: ECDSA by digest must be 0x40"
    kw_rawc "$port" --op 0x15 --ski "$EC_SKI" --payload-file "$W/dgst" --expect-error 0x40 \
        >/dev/null || fail "$where: ECDSA by SKI must be 0x40"
}

# ---- a key server holding the keys ----
PORT=$(free_port)
start_keyserver ks "$PORT" --allow "cn:edge=ski:$RSA_SKI" --audit-log "$W/audit.log" \
    --enable-op rsa-decrypt-raw
KS=$KS_PID
attacks "$PORT" "direct"
openssl x509 -in "$PKI/certs/rsa2048.crt" -noout -pubkey >"$W/rsa.pub"
for ids in "--ski $RSA_SKI" "--key-digest $RSA_ID --ski $RSA_SKI"; do
    # shellcheck disable=SC2086 # ids is two words
    kw_rawc "$PORT" --op 0x05 $ids --payload-file "$W/dgst" --out "$W/sig" >/dev/null ||
        fail "direct: RSA by $ids must be served"
    openssl pkeyutl -verify -pubin -inkey "$W/rsa.pub" -pkeyopt digest:sha256 -in "$W/dgst" \
        -sigfile "$W/sig" >/dev/null 2>&1 || fail "direct: RSA signature by $ids does not verify"
done
# Both ids of one key but a digest of another key: refused even though each id alone is known.
kw_rawc "$PORT" --op 0x05 --key-digest "$RSA_ID" --ski "$EC_SKI" --payload-file "$W/dgst" \
    --expect-error 0x07 >/dev/null || fail "direct: digest=RSA + SKI=ECDSA must be 0x07"
# 0xA2: the SNI must be a name of the key's certificate when a digest or SKI is given too.
kw_rawc "$PORT" --op 0xa2 --key-digest "$RSA_ID" --sni rsa2048.example --out "$W/chain" \
    >/dev/null || fail "direct: 0xA2 digest=RSA + its own SNI must be served"
kw_rawc "$PORT" --op 0xa2 --key-digest "$RSA_ID" --sni ecdsa-p256.example --expect-error 0x07 \
    >/dev/null || fail "direct: 0xA2 digest=RSA + SNI of the ECDSA certificate must be 0x07"
pass "direct: mixed key ids (digest/SKI/SNI of different keys) are 0x07 for signatures, 0x08, 0xA0, 0xA1, 0xA2; the RSA key by SKI or by both its ids signs"
sleep 1.2
python3 - "$W/audit.log" "$EC_ID" <<'PY' || fail "the audit log shows the ECDSA key used"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert not any(l["key"] == sys.argv[2] and l["result"] == "ok" for l in lines), "ECDSA used"
assert sum(l["result"] == "format" for l in lines) >= 8, [l["result"] for l in lines]
PY
kill "$KS" 2>/dev/null || true

# ---- through a chain: A holds no key, forwards to B (which allows A everything) ----
PORT_B=$(free_port)
PORT_A=$(free_port)
start_ks_as ks-b "$PORT_B" keyserver --keys "$PKI/keys" --audit-log "$W/audit-b.log" \
    --enable-op rsa-decrypt-raw
start_ks_as ks-a "$PORT_A" ks-a --upstream "127.0.0.1:$PORT_B" --allow "cn:edge=ski:$RSA_SKI" \
    --enable-op rsa-decrypt-raw
attacks "$PORT_A" "chain"
kw_rawc "$PORT_A" --op 0x05 --ski "$RSA_SKI" --payload-file "$W/dgst" --out "$W/sig" \
    >/dev/null || fail "chain: RSA by SKI must be forwarded and served"
openssl pkeyutl -verify -pubin -inkey "$W/rsa.pub" -pkeyopt digest:sha256 -in "$W/dgst" \
    -sigfile "$W/sig" >/dev/null 2>&1 || fail "chain: RSA signature by SKI does not verify"
# A cannot check that a digest and an SKI name one key it does not hold: 0x07, even for the
# consistent pair.
kw_rawc "$PORT_A" --op 0x05 --key-digest "$RSA_ID" --ski "$RSA_SKI" --payload-file "$W/dgst" \
    --expect-error 0x07 >/dev/null || fail "chain: two ids for a key A does not hold must be 0x07"
pass "chain: A refuses mixed ids (0x07) for signatures, 0x08, 0xA0, 0xA1, 0xA2; forwards the RSA key by its SKI alone"
kill "$KS_PID" 2>/dev/null || true

# sni: rule on a forwarder: 0xA2 by SNI alone is forwarded; with a digest of another key beside
# it (authorised on the SNI, answered by the digest at B) it is 0x07.
PORT_A2=$(free_port)
start_ks_as ks-a2 "$PORT_A2" ks-a --upstream "127.0.0.1:$PORT_B" \
    --allow "cn:edge=sni:rsa2048.example"
kw_rawc "$PORT_A2" --op 0xa2 --sni rsa2048.example --out "$W/chain-a" >/dev/null ||
    fail "chain: 0xA2 by an allowed SNI must be forwarded"
cmp -s "$W/chain-a" "$W/chain" || fail "chain: 0xA2 by SNI returned another chain"
kw_rawc "$PORT_A2" --op 0xa2 --sni rsa2048.example --key-digest "$EC_ID" --out "$W/chain-x" \
    >/dev/null 2>&1 && fail "chain: 0xA2 SNI=rsa2048 + digest=ECDSA returned a chain"
kw_rawc "$PORT_A2" --op 0xa2 --sni rsa2048.example --key-digest "$EC_ID" --expect-error 0x07 \
    >/dev/null || fail "chain: 0xA2 SNI=rsa2048 + digest=ECDSA must be 0x07"
pass "chain: 0xA2 by an allowed SNI is forwarded; SNI + another key's digest is 0x07"
