#!/bin/bash
# Writes the seed corpus of keyserver_dispatch_fuzz (tests/fuzz/corpus/keyserver_dispatch/): one
# valid request for every opcode against the fuzzer's fixed test keys (tests/fuzz/keys/
# keyserver_dispatch/, embedded in keyserver_dispatch_keys.h), plus pipelined, padded and
# malformed streams. Seeds are deterministic except RSA ciphertexts (random padding) and are
# committed; rerun only when the keys or the protocol change. Needs openssl and python3.
#
# Usage: tests/fuzz/gen_keyserver_dispatch_seeds.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
keys=$here/keys/keyserver_dispatch
out=$here/corpus/keyserver_dispatch
tmp=$(mktemp -d /tmp/kw-seeds.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

digest() { openssl pkey -in "$keys/$1.key" -pubout -outform DER | openssl dgst -sha256 -r | cut -c1-64; }
ski() { openssl x509 -in "$keys/$1.crt" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :\n'; }

# RSA ciphertexts: PKCS#1 v1.5 of a TLS PMS (version 03 03), and a raw k-byte block.
openssl pkey -in "$keys/rsa2048.key" -pubout -out "$tmp/rsa.pub"
printf '\003\003' >"$tmp/pms"
head -c 46 /dev/urandom >>"$tmp/pms"
openssl pkeyutl -encrypt -pubin -inkey "$tmp/rsa.pub" -in "$tmp/pms" -out "$tmp/pms.enc"
printf 'hello' | openssl pkeyutl -encrypt -pubin -inkey "$tmp/rsa.pub" -out "$tmp/hello.enc"

RSA=$(digest rsa2048) EC=$(digest p256) ED=$(digest ed25519) RSA_SKI=$(ski rsa2048) \
    PMS_ENC=$(xxd -p "$tmp/pms.enc" | tr -d '\n') HELLO_ENC=$(xxd -p "$tmp/hello.enc" | tr -d '\n') \
    OUT=$out python3 - <<'EOF'
import os, struct

env = os.environ
RSA, EC, ED = (bytes.fromhex(env[k]) for k in ("RSA", "EC", "ED"))
RSA_SKI = bytes.fromhex(env["RSA_SKI"])
PMS_ENC, HELLO_ENC = bytes.fromhex(env["PMS_ENC"]), bytes.fromhex(env["HELLO_ENC"])

def item(tag, value):
    return struct.pack(">BH", tag, len(value)) + value

def frame(rid, items, pad=0, major=1):
    body = b"".join(items)
    if pad and len(body) + 8 < pad:
        body += item(0x20, bytes(max(0, pad - 8 - len(body) - 3)))
    return struct.pack(">BBHI", major, 0, len(body), rid) + body

def req(rid, op, key=None, payload=None, extra=None, ski=None, sni=None, pad=0):
    items = []
    if key is not None:
        items.append(item(0x01, key))
    if ski is not None:
        items.append(item(0x04, ski))
    if sni is not None:
        items.append(item(0x02, sni))
    items.append(item(0x11, bytes([op])))
    if payload is not None:
        items.append(item(0x12, payload))
    if extra is not None:
        items.append(item(0x14, extra))
    return frame(rid, items, pad)

lens = [36, 20, 28, 32, 48, 64]
seeds = {
    "ping": req(1, 0xF1, payload=b"hi"),
    "rsa-decrypt": req(2, 0x01, RSA, HELLO_ENC),
    "rsa-decrypt-raw": req(3, 0x08, RSA, PMS_ENC),
    "tls-rsa-decrypt": req(4, 0xA0, RSA, PMS_ENC, extra=b"\x03\x03"),
    "tls-rsa-decrypt-bad-padding": req(5, 0xA0, RSA, bytes(255) + b"\x07", extra=b"\x03\x03"),
    "tls-rsa-decrypt-wrong-version": req(6, 0xA0, RSA, PMS_ENC, extra=b"\x03\x01"),
    "tls12-master": req(7, 0xA1, RSA, PMS_ENC),
    "cert-chain-digest": req(8, 0xA2, RSA),
    "cert-chain-ski": req(9, 0xA2, ski=RSA_SKI),
    "cert-chain-sni": req(10, 0xA2, sni=b"P256.FUZZ.test"),
    "list-keys": req(11, 0xA3),
    "ed25519-sign": req(12, 0x18, ED, b"message to sign"),
    "unknown-opcode": req(13, 0x77, RSA, b"x"),
    "key-not-found": req(14, 0x05, bytes(32), bytes(32)),
    "wrong-key-type": req(15, 0x15, RSA, bytes(32)),
    "no-opcode": frame(16, [item(0x01, RSA), item(0x12, b"x")]),
    "wrong-digest-len": req(17, 0x05, RSA, bytes(31)),
    "malformed-item": frame(18, [item(0x11, b"\xf1"), b"\x12\x00\x09ab"]),
    "gokeyless-padded-sign": req(19, 0x05, ski=RSA_SKI, payload=bytes(range(32)), pad=1024),
}
for i, op in enumerate(range(0x02, 0x08)):
    seeds["rsa-sign-%02x" % op] = req(20 + i, op, RSA, bytes([i]) * lens[i])
for i, op in enumerate(range(0x12, 0x18)):
    seeds["ecdsa-sign-%02x" % op] = req(30 + i, op, EC, bytes([i]) * lens[i])
for i, op in enumerate(range(0x35, 0x38)):
    seeds["rsa-pss-sign-%02x" % op] = req(40 + i, op, RSA, bytes([i]) * lens[3 + i])
seeds["pipelined-mixed"] = b"".join(
    [seeds["ping"], seeds["rsa-sign-05"], seeds["ecdsa-sign-15"], seeds["ed25519-sign"],
     seeds["tls-rsa-decrypt"], seeds["list-keys"], seeds["unknown-opcode"]])
seeds["pipelined-then-malformed"] = seeds["ping"] + seeds["malformed-item"] + seeds["ping"]
seeds["version-mismatch"] = frame(50, [item(0x11, b"\xf1")], major=2)
for name, data in seeds.items():
    with open(os.path.join(env["OUT"], name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), env["OUT"]))
EOF
