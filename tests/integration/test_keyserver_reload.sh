#!/bin/bash
# SIGHUP hot reload: a key server starts with two keys; one long-lived client connection
# (kw_session, which never reconnects) is open; a third key file is added and SIGHUP sent; the SAME
# connection signs with the new key at once. A broken key file makes the next reload fail: the old
# keys keep working on the same connection and new ones. The server's own certificate is replaced
# and reloaded: new connections see it while the old connection goes on.
. "$(dirname "$0")/lib.sh"

make_pki
K=$KW_TMP/keys
key_dir "$K" rsa2048 ecdsa-p256
cp "$PKI/keyserver.crt" "$KW_TMP/id.crt"
cp "$PKI/keyserver.key" "$KW_TMP/id.key"
KS_PORT=$(free_port)
start_bg ks "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$KS_PORT" --cert "$KW_TMP/id.crt" \
    --key "$KW_TMP/id.key" --ca "$PKI/ca.crt" --keys "$K" --workers 2
KS_PID=$LAST_PID
wait_port "$KS_PORT" 15 || fail "key server did not start"

start_session session "$KS_PORT"
hello=$SESS_HELLO
pass "long-lived client connection open (${hello#connected }, local port)"

hexof() { xxd -p "$1" | tr -d '\n'; }

printf 'message for the new key\n' >"$KW_TMP/msg"
MSG=$(hexof "$KW_TMP/msg")
ED=$(kw_keyid "$PKI/keys/ed25519.crt")
EC=$(kw_keyid "$PKI/keys/ecdsa-p256.crt")
H256=$(openssl dgst -sha256 -binary "$KW_TMP/msg" | xxd -p | tr -d '\n')

session_ask "op 18 $ED $MSG"
[ "$REPLY_LINE" = "error key-not-found" ] || fail "ed25519 before the reload: $REPLY_LINE"
session_ask "op 15 $EC $H256"
[[ $REPLY_LINE == ok* ]] || fail "ecdsa before the reload: $REPLY_LINE"
pass "before reload: ecdsa-p256 served, ed25519 unknown"

key_dir "$K" ed25519
ks_hup "reloaded:"
session_ask "op 18 $ED $MSG"
[[ $REPLY_LINE == ok* ]] || fail "ed25519 after the reload on the same connection: $REPLY_LINE"
echo "${REPLY_LINE#ok }" | xxd -r -p >"$KW_TMP/sig"
openssl x509 -in "$PKI/keys/ed25519.crt" -noout -pubkey >"$KW_TMP/ed.pub"
openssl pkeyutl -verify -pubin -inkey "$KW_TMP/ed.pub" -rawin -in "$KW_TMP/msg" \
    -sigfile "$KW_TMP/sig" >/dev/null || fail "the new key's signature does not verify"
pass "SIGHUP added ed25519; the same connection signed with it at once (verified)"

# A broken key file: the reload fails, the old state stays.
echo "not a key" >"$K/broken.key"
ks_hup "reload failed"
grep "reload failed" "$KW_TMP/ks.log" | tail -1 | kw_grep "1 key file(s) refused" ||
    fail "the failed reload does not say why"
grep -q "broken.key refused" "$KW_TMP/ks.log" || fail "the log does not name the broken file"
session_ask "op 18 $ED $MSG"
[[ $REPLY_LINE == ok* ]] || fail "ed25519 after a failed reload: $REPLY_LINE"
session_ask "op 15 $EC $H256"
[[ $REPLY_LINE == ok* ]] || fail "ecdsa after a failed reload: $REPLY_LINE"
printf 'x' >"$KW_TMP/x"
kw_cli "$KS_PORT" sign --alg ecdsa-sha256 --in "$KW_TMP/x" --out "$KW_TMP/x.sig" \
    --key-cert "$PKI/certs/ecdsa-p256.crt" >/dev/null 2>&1 || fail "new connection after a failed reload"
pass "a broken key file fails the reload; old keys serve old and new connections"
rm -f "$K/broken.key"

# The server's own identity: a new certificate (same CA, new key) after SIGHUP.
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=localhost" \
    -keyout "$KW_TMP/id2.key" -out "$KW_TMP/id2.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$KW_TMP/id2.ext"
openssl x509 -req -in "$KW_TMP/id2.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 2 -extfile "$KW_TMP/id2.ext" -out "$KW_TMP/id2.crt" 2>/dev/null || fail "new identity"
cp "$KW_TMP/id2.key" "$KW_TMP/id.key"
cp "$KW_TMP/id2.crt" "$KW_TMP/id.crt"
ks_hup "reloaded:"
want=$(openssl x509 -in "$KW_TMP/id2.crt" -noout -fingerprint -sha256)
got=$(OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$KS_PORT" \
    -cert "$PKI/edge.crt" -key "$PKI/edge.key" -CAfile "$PKI/ca.crt" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256)
[ "$want" = "$got" ] || fail "new connections do not see the reloaded certificate ($got)"
session_ask "ping"
[ "$REPLY_LINE" = pong ] || fail "old connection after the identity reload: $REPLY_LINE"
session_ask "op 18 $ED $MSG"
[[ $REPLY_LINE == ok* ]] || fail "old connection after the identity reload: $REPLY_LINE"
pass "SIGHUP reloaded the server's certificate; the old connection goes on"

# A broken identity: refused, the previous identity stays.
echo "garbage" >"$KW_TMP/id.crt"
ks_hup "reload failed"
got=$(OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$KS_PORT" \
    -cert "$PKI/edge.crt" -key "$PKI/edge.key" -CAfile "$PKI/ca.crt" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256)
[ "$want" = "$got" ] || fail "a broken certificate replaced the working one"
pass "a broken certificate fails the reload; the previous identity stays"

echo quit >&"$SESS_IN"
kill -0 "$KS_PID" || fail "key server died"
