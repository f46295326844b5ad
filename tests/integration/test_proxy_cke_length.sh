#!/bin/bash
# keyward-proxy and a TLS 1.2 RSA ClientKeyExchange of the wrong length (issue 14, item 8): an
# encrypted pre-master secret that is not exactly the key's modulus long (100 or 512 bytes for an
# RSA-2048 key) is refused by the provider at once, without a key-server operation; one of the
# right length (256 bytes, random) still goes to the key server. Checked in both TLS 1.2 RSA key
# exchange modes (master secret 0xA1, the default, and --no-master-secret 0xA0) through the key
# server's audit log.
. "$(dirname "$0")/lib.sh"
proxy_remote_setup
KS=$(free_port)
AUDIT=$KW_TMP/audit.log
start_keyserver ks "$KS" --audit-log "$AUDIT"
# shellcheck disable=SC2207
KEYARGS=(--cert "$PKI/certs/rsa2048.crt" $(proxy_ks_args "$KS"))

ops() { # audit lines of RSA decryptions (any of the three opcodes)
    grep -Ec '"opcode":"(tls12-master-secret|tls-rsa-decrypt|rsa-decrypt)"' "$AUDIT" 2>/dev/null ||
        true
}

# cke PORT LEN: a raw TLS 1.2 handshake offering only TLS_RSA_WITH_AES_128_GCM_SHA256, whose
# ClientKeyExchange carries LEN random bytes; prints the server's answer ("alert LEVEL DESC", or
# none within 2 s when it took the key exchange and waits for the client's Finished).
cke() {
    python3 - "$1" "$2" <<'PY'
import os, socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
def rec(typ, body):
    return struct.pack(">BHH", typ, 0x0303, len(body)) + body
def hs(typ, body):
    return struct.pack(">B", typ) + len(body).to_bytes(3, "big") + body
sni = b"rsa2048.example"
ext = (b"\xff\x01\x00\x01\x00" +  # renegotiation_info
       b"\x00\x0d\x00\x06\x00\x04\x04\x01\x08\x04" +  # signature_algorithms
       struct.pack(">HHHBH", 0, len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni)
hello = (b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x02\x00\x9c" + b"\x01\x00" +
         struct.pack(">H", len(ext)) + ext)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(rec(22, hs(1, hello)))
buf = b""
def read_record():
    global buf
    while len(buf) < 5 or len(buf) < 5 + struct.unpack(">H", buf[3:5])[0]:
        b = s.recv(65536)
        if not b:
            return None, None
        buf += b
    typ, ln = buf[0], struct.unpack(">H", buf[3:5])[0]
    body, buf = buf[5:5 + ln], buf[5 + ln:]
    return typ, body
hsbuf = b""
done = False
while not done:
    typ, body = read_record()
    if typ is None:
        print("closed before ServerHelloDone"); sys.exit(0)
    if typ == 21:
        print("alert %d %d (before the key exchange)" % (body[0], body[1])); sys.exit(0)
    hsbuf += body
    while len(hsbuf) >= 4 and len(hsbuf) >= 4 + int.from_bytes(hsbuf[1:4], "big"):
        t, ln = hsbuf[0], int.from_bytes(hsbuf[1:4], "big")
        hsbuf = hsbuf[4 + ln:]
        done = done or t == 14  # ServerHelloDone
s.sendall(rec(22, hs(16, struct.pack(">H", n) + os.urandom(n))))
s.settimeout(2)
try:
    typ, body = read_record()
    print("alert %d %d" % (body[0], body[1]) if typ == 21 else "closed" if typ is None else "record %d" % typ)
except socket.timeout:
    print("no answer (the server waits for Finished)")
PY
}

for mode in default no-master-secret; do
    PP=$(free_port)
    extra=()
    [ "$mode" = default ] || extra=(--no-master-secret)
    start_proxy "proxy-$mode" "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" "${extra[@]}" --threads 1
    before=$(ops)
    for n in 100 512; do
        out=$(cke "$PP" "$n")
        [[ $out != *before* ]] || fail "$mode: the handshake failed before the key exchange: $out"
        sleep 0.3
        [ "$(ops)" -eq "$before" ] ||
            fail "$mode: a $n-byte ClientKeyExchange cost a key-server operation ($(ops) audited)"
        pass "$mode: a $n-byte encrypted pre-master secret for RSA-2048 is refused locally ($out)"
    done
    out=$(cke "$PP" 256)
    tries=40
    while [ "$(ops)" -le "$before" ] && [ $tries -gt 0 ]; do sleep 0.05; tries=$((tries - 1)); done
    [ "$(ops)" -eq $((before + 1)) ] ||
        fail "$mode: a 256-byte ClientKeyExchange made $(($(ops) - before)) key-server operations, not 1"
    pass "$mode: a 256-byte one still goes to the key server ($out)"
done
