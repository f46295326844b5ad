#!/bin/bash
# Edges never hold private key bytes: after TLS 1.2 (RSA key exchange) and TLS 1.3 handshakes on
# the rsa2048 site key, a core of keyward-proxy (gcore) and one of openssl s_server using the
# keyward provider with a key stub must not contain any 16-byte window of the key's private
# exponent d or primes p, q, in big-endian (DER) or little-endian (BIGNUM limb) byte order.
# Control: the same search on a core of openssl s_server holding the key FILE must find them.
. "$(dirname "$0")/lib.sh"

if [ "${KW_SANITIZE:-OFF}" = ON ]; then
    echo "skip: ASan builds (shadow memory makes cores huge)"
    exit 0
fi
command -v gcore >/dev/null || { echo "skip: gcore (gdb) not installed"; exit 0; }
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 0; }
proxy_remote_ok || { echo "skip: provider or key server not built"; exit 0; }
export DEBUGINFOD_URLS= # gdb must not try the network

make_pki
KEY=$PKI/keys/rsa2048.key

# Needles: for each of d, p, q, three 16-byte windows (start, middle, end) of its big-endian
# bytes and of the byte-reversed form (x86-64 BIGNUM limbs are little-endian words, least
# significant first, so the whole number reads reversed), hex, one "NAME ORDER HEX" a line.
openssl rsa -in "$KEY" -text -noout 2>/dev/null | python3 -c '
import re, sys
text = sys.stdin.read()
def field(name):
    m = re.search(r"^" + name + r":\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
    if not m:
        sys.exit("no %s in openssl rsa -text" % name)
    return bytes.fromhex(re.sub(r"[\s:]", "", m.group(1))).lstrip(b"\0")
for name, label in (("privateExponent", "d"), ("prime1", "p"), ("prime2", "q")):
    be = field(name)
    assert len(be) >= 120, (label, len(be))
    for order, b in (("be", be), ("le", be[::-1])):
        for off in (8, len(b) // 2 - 8, len(b) - 24):
            print(label, order, b[off:off + 16].hex())
' >"$KW_TMP/needles" || fail "could not extract d, p, q from $KEY"
[ "$(wc -l <"$KW_TMP/needles")" = 18 ] || fail "expected 18 needles: $(cat "$KW_TMP/needles")"
pass "needles: 3 windows x 2 byte orders of d, p, q of rsa2048"

# search CORE: prints "FOUND d be ..." lines for needles present, "searched N MiB" last.
search() {
    python3 - "$1" "$KW_TMP/needles" <<'PY'
import mmap, sys
with open(sys.argv[1], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
    for line in open(sys.argv[2]):
        name, order, hexs = line.split()
        if m.find(bytes.fromhex(hexs)) >= 0:
            print("FOUND", name, order, hexs)
    print("searched %d MiB" % (m.size() >> 20))
PY
}

# core_of NAME PID: gcore PID into $KW_TMP/NAME.core.PID; sets CORE. Skips if ptrace is refused.
core_of() {
    local name=$1 pid=$2
    CORE=$KW_TMP/$name.core.$pid
    if ! timeout 50 gcore -o "$KW_TMP/$name.core" "$pid" >"$KW_TMP/gcore-$name.out" 2>&1 ||
        [ ! -s "$CORE" ]; then
        if grep -Eqi "ptrace|not permitted|could not attach" "$KW_TMP/gcore-$name.out"; then
            echo "skip: gcore cannot attach (ptrace not allowed): $(tail -n 2 "$KW_TMP/gcore-$name.out")"
            exit 0
        fi
        fail "gcore $name ($pid): $(tail -n 5 "$KW_TMP/gcore-$name.out")"
    fi
    kill -0 "$pid" 2>/dev/null || fail "$name died under gcore"
}

# expect_clean NAME PID: core of PID has none of the needles.
expect_clean() {
    local name=$1 pid=$2 out
    core_of "$name" "$pid"
    out=$(search "$CORE") || fail "search in $CORE failed"
    rm -f "$CORE"
    if grep -q FOUND <<<"$out"; then
        fail "$name: private key bytes in its core: $(echo "$out" | grep FOUND | head -n 3)"
    fi
    pass "$name: core ($(echo "$out" | tail -n 1)) holds none of the 18 needles of d, p, q"
}

# handshakes PORT: TLS 1.2 RSA key exchange, TLS 1.2 ECDHE-RSA and TLS 1.3, twice each.
handshakes() {
    local port=$1 i
    for i in 1 2; do
        curl -sS --max-time 15 --cacert "$PKI/site-ca.crt" --resolve "localhost:$port:127.0.0.1" \
            --tlsv1.2 --tls-max 1.2 --ciphers AES128-GCM-SHA256 -o /dev/null \
            "https://localhost:$port/rsa-kx$i" || fail "TLS 1.2 RSA key exchange to $port"
        curl -sS --max-time 15 --cacert "$PKI/site-ca.crt" --resolve "localhost:$port:127.0.0.1" \
            --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256 -o /dev/null \
            "https://localhost:$port/ecdhe$i" || fail "TLS 1.2 ECDHE-RSA to $port"
        curl -sS --max-time 15 --cacert "$PKI/site-ca.crt" --resolve "localhost:$port:127.0.0.1" \
            --tlsv1.3 -o /dev/null "https://localhost:$port/tls13-$i" || fail "TLS 1.3 to $port"
    done
}

KS=$(free_port)
start_keyserver ks "$KS"

# 1. keyward-proxy, rsa2048 certificate only, key on the key server.
BP=$(free_port)
start_backend backend "$BP"
PP=$(free_port)
# shellcheck disable=SC2046
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" --cert "$PKI/certs/rsa2048.crt" \
    $(proxy_ks_args "$KS") --threads 2
handshakes "$PP"
pass "keyward-proxy: 6 handshakes (TLS 1.2 RSA kx, ECDHE-RSA, TLS 1.3) with the key server's key"
expect_clean keyward-proxy "$PROXY_PID"

# 2. openssl s_server with the provider and a key stub.
write_openssl_conf "$KW_TMP/prov.cnf" "127.0.0.1:$KS"
"$KW_BIN/keyward" stub --cert "$PKI/certs/rsa2048.crt" --out "$KW_TMP/rsa2048.stub" \
    >/dev/null 2>&1 || fail "keyward stub"
SP=$(free_port)
start_bg s_server-stub env OPENSSL_CONF="$KW_TMP/prov.cnf" openssl s_server \
    -accept "127.0.0.1:$SP" -cert "$PKI/certs/rsa2048.crt" -key "$KW_TMP/rsa2048.stub" -www -quiet
STUB_PID=$LAST_PID
wait_port "$SP" 15 || fail "s_server with the stub did not start"
handshakes "$SP"
pass "openssl s_server + keyward provider (stub): 6 handshakes"
expect_clean s_server-provider "$STUB_PID"

# 3. Control: openssl s_server with the key file must show the key in its core.
LP=$(free_port)
start_bg s_server-local env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$LP" \
    -cert "$PKI/keys/rsa2048.crt" -key "$KEY" -www -quiet
LOCAL_PID=$LAST_PID
wait_port "$LP" 15 || fail "s_server with the key file did not start"
handshakes "$LP"
core_of s_server-local "$LOCAL_PID"
out=$(search "$CORE") || fail "search in control core failed"
rm -f "$CORE"
for n in d p q; do
    grep -q "^FOUND $n " <<<"$out" ||
        fail "control: $n not found in the core of s_server holding the key file (method broken): $out"
done
pass "control: s_server with the key file: $(echo "$out" | grep -c FOUND)/18 needles found ($(echo "$out" | grep FOUND | awk '{print $2"-"$3}' | sort -u | tr '\n' ' '))"
