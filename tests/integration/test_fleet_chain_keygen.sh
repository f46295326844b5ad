#!/bin/bash
# Chaining with the PKI `keyward keygen` makes, as a newcomer tries it: key server A (no keys,
# --upstream B) and key server B (the keys) both run with keygen's keyserver.crt/.key. That
# certificate must be valid for client authentication too, since A presents it to B; and a key
# server whose identity towards its upstreams is a server-only certificate (an older keygen, or a
# public server certificate) refuses to start, naming the certificate, the cause and the fix,
# instead of answering every forwarded request "upstream unavailable" and logging nothing.
. "$(dirname "$0")/lib.sh"

W=$KW_TMP/w
mkdir -p "$W"
"$KW_BIN/keyward" keygen --out "$W/pki" >/dev/null || fail "keyward keygen"
PKI=$W/pki
export PKI
echo "hello" >"$W/msg"

PORT_B=$(free_port)
PORT_A=$(free_port)
start_ks_as ks-b "$PORT_B" keyserver --keys "$PKI/keys"
start_ks_as ks-a "$PORT_A" keyserver --upstream "127.0.0.1:$PORT_B"
kw_cli "$PORT_A" sign --key-cert "$PKI/certs/rsa2048.crt" --alg rsa-pss-sha256 --in "$W/msg" \
    --out "$W/sig" 2>"$W/err" || fail "sign through A -> B with keygen's PKI: $(cat "$W/err")"
pass "keygen's keyserver.crt works for chaining: a signature through A -> B"

# A server-only identity towards the upstreams: refused at start, with the fix.
printf '%s\n' "basicConstraints = critical,CA:FALSE" \
    "keyUsage = critical,digitalSignature,keyEncipherment" "extendedKeyUsage = serverAuth" \
    "subjectAltName = DNS:localhost,IP:127.0.0.1" >"$W/server.ext"
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=server-only" \
    -keyout "$PKI/server-only.key" -out "$W/so.csr" 2>/dev/null || fail "req"
openssl x509 -req -in "$W/so.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -CAserial "$W/ca.srl" -days 30 -extfile "$W/server.ext" -out "$PKI/server-only.crt" \
    2>/dev/null || fail "x509"
PORT_C=$(free_port)
rc=0
timeout 20 "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$PORT_C" --cert "$PKI/server-only.crt" \
    --key "$PKI/server-only.key" --ca "$PKI/ca.crt" --upstream "127.0.0.1:$PORT_B" \
    >"$W/c.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] ||
    fail "a key server with a server-only identity towards its upstream started (rc $rc): $(cat "$W/c.log")"
grep -q "server-only.crt" "$W/c.log" && grep -q "clientAuth" "$W/c.log" &&
    grep -q -- "--upstream-cert" "$W/c.log" ||
    fail "the refusal does not name the certificate, clientAuth and --upstream-cert: $(cat "$W/c.log")"
pass "a server-only identity towards upstreams is refused: '$(grep -m1 clientAuth "$W/c.log")'"

# The same certificate as the server's own identity, with a client identity for upstreams: fine.
start_ks_as ks-c "$PORT_C" server-only --upstream "127.0.0.1:$PORT_B" \
    --upstream-cert "$PKI/edge.crt" --upstream-key "$PKI/edge.key"
kw_cli "$PORT_C" sign --key-cert "$PKI/certs/ecdsa-p256.crt" --alg ecdsa-sha256 --in "$W/msg" \
    --out "$W/sig" 2>"$W/err" || fail "sign through C (--upstream-cert edge.crt): $(cat "$W/err")"
pass "--upstream-cert with a client certificate chains"

# An upstream that refuses this key server (an identity of another CA): A says why in its log.
PORT_D=$(free_port)
start_ks_as ks-d "$PORT_D" keyserver --upstream "127.0.0.1:$PORT_B" \
    --upstream-cert "$PKI/rogue.crt" --upstream-key "$PKI/rogue.key"
kw_cli "$PORT_D" sign --key-cert "$PKI/certs/ecdsa-p256.crt" --alg ecdsa-sha256 --in "$W/msg" \
    --out "$W/sig" 2>"$W/err" && fail "sign through D (a rogue identity upstream) succeeded"
wait_for_line "$KW_TMP/ks-d.log" "upstream request failed" "D logged nothing about its upstream" 10
grep "upstream request failed" "$KW_TMP/ks-d.log" | kw_grep -i "unknown ca\|refused" ||
    fail "D's log does not say the upstream refused it: $(grep "upstream request" "$KW_TMP/ks-d.log")"
pass "an upstream refusing this key server is logged: '$(grep -m1 "upstream request failed" "$KW_TMP/ks-d.log" | cut -c 1-300)'"
