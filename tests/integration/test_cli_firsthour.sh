#!/bin/bash
# The traps a newcomer meets in the first hour with the CLI (issue 17): keygen refuses to
# overwrite an existing PKI without --force; --version on every binary; error messages that name
# the real cause (decrypt of a bad ciphertext, a key that does not match its certificate, no key
# server configured); the environment variables of the provider (KEYWARD_SERVERS, KEYWARD_CLIENT_CERT,
# KEYWARD_CLIENT_KEY, KEYWARD_CA, KEYWARD_TIMEOUT_MS) work for the CLI, the old spellings too.
. "$(dirname "$0")/lib.sh"

W=$KW_TMP/work
mkdir -p "$W"

# ---- keygen never overwrites a PKI silently
"$KW_BIN/keyward" keygen --out "$W/pki" >/dev/null || fail "keygen into a new directory"
sum=$(cat "$W/pki/ca.key" "$W/pki/keys/rsa2048.key" | sha256sum)
expect_fail 1 "$W/pki/ca.crt" "$KW_BIN/keyward" keygen --out "$W/pki"
grep -q -- "--force" "$W/err" || fail "keygen refusal does not name --force: $(cat "$W/err")"
[ "$(cat "$W/pki/ca.key" "$W/pki/keys/rsa2048.key" | sha256sum)" = "$sum" ] ||
    fail "a refused keygen changed the PKI"
pass "keygen into an existing PKI: '$(head -n1 "$W/err")'"
# one file of the PKI is enough to refuse (a half-made or hand-edited PKI is not replaced)
mkdir -p "$W/pki1/keys"
echo keep >"$W/pki1/keys/ed25519.key"
expect_fail 1 "$W/pki1/keys/ed25519.key" "$KW_BIN/keyward" keygen --out "$W/pki1"
[ "$(cat "$W/pki1/keys/ed25519.key")" = keep ] || fail "keygen overwrote a lone site key"
expect_fail 1 "--force" sh "$KW_SOURCE_DIR/scripts/make-pki.sh" "$W/pki"
pass "make-pki.sh refuses too; one existing file is enough"
"$KW_BIN/keyward" keygen --out "$W/pki" --force >/dev/null || fail "keygen --force"
[ "$(cat "$W/pki/ca.key" "$W/pki/keys/rsa2048.key" | sha256sum)" != "$sum" ] ||
    fail "keygen --force did not replace the PKI"
openssl verify -CAfile "$W/pki/ca.crt" "$W/pki/edge.crt" >/dev/null ||
    fail "keygen --force left a PKI whose edge certificate the new CA did not sign"
pass "keygen --force replaces the whole PKI"

# ---- --version on every binary: "NAME X.Y.Z (OpenSSL A.B.C)", the version from CMakeLists.txt
version=$(sed -n 's/^project(keyward VERSION \([0-9.]*\).*/\1/p' "$KW_SOURCE_DIR/CMakeLists.txt")
[ -n "$version" ] || fail "no project version in CMakeLists.txt"
for bin in keyward keyward-keyserver keyward-proxy; do
    "$KW_BIN/$bin" --version >"$W/out" 2>"$W/err" || fail "$bin --version: $(cat "$W/err")"
    grep -Eq "^$bin $version \\(OpenSSL 3\\.[0-9]+\\.[0-9]+" "$W/out" ||
        fail "$bin --version printed '$(cat "$W/out")'"
done
pass "--version: $(cat "$W/out")"

# ---- error messages that name the real cause, against a real key server (the PKI made above)
PKI=$W/pki
export PKI
PORT=$(free_port)
start_keyserver ks "$PORT" --enable-op rsa-decrypt # keyward decrypt sends 0x01
(printf '\000'; head -c 255 /dev/urandom) >"$W/badct" # 256 bytes, not a PKCS#1 v1.5 ciphertext
expect_fail 1 "ciphertext" kw_cli "$PORT" decrypt --in "$W/badct" --out "$W/pt" \
    --key-cert "$PKI/certs/rsa2048.crt"
if grep -q -- "--alg" "$W/err"; then fail "decrypt (which has no --alg) blames --alg: $(cat "$W/err")"; fi
pass "decrypt of a bad ciphertext: '$(cat "$W/err")'"
head -c 10 /dev/urandom >"$W/shortct"
expect_fail 2 "256 bytes" kw_cli "$PORT" decrypt --in "$W/shortct" --out "$W/pt" \
    --key-cert "$PKI/certs/rsa2048.crt"
pass "decrypt of a ciphertext of the wrong length: '$(cat "$W/err")'"
expect_fail 1 "RSA" kw_cli "$PORT" decrypt --in "$W/badct" --out "$W/pt" \
    --key-id "sha256:$(kw_keyid "$PKI/certs/ecdsa-p256.crt")"
if grep -q -- "--alg" "$W/err"; then fail "decrypt with an EC key blames --alg: $(cat "$W/err")"; fi
pass "decrypt with an EC key by --key-id: '$(cat "$W/err")'"

expect_fail 2 "$PKI/edge.crt" "$KW_BIN/keyward" ping --server "127.0.0.1:$PORT" \
    --cert "$PKI/edge.crt" --key "$PKI/edge2.key" --ca "$PKI/ca.crt"
grep -q "does not match" "$W/err" || fail "mismatched key: $(cat "$W/err")"
pass "a key that does not match its certificate: '$(cat "$W/err")'"

for servers in "," " , "; do
    expect_fail 2 "no key server" "$KW_BIN/keyward" ping --server "$servers" \
        --cert "$PKI/edge.crt" --key "$PKI/edge.key" --ca "$PKI/ca.crt"
    grep -q -- "--server" "$W/err" || fail "--server '$servers': $(cat "$W/err")"
done
expect_fail 2 "no key server" env -u KEYWARD_SERVER -u KEYWARD_SERVERS "$KW_BIN/keyward" ping \
    --cert "$PKI/edge.crt" --key "$PKI/edge.key" --ca "$PKI/ca.crt"
if grep -q "(none)" "$W/err"; then fail "no server: '$(cat "$W/err")'"; fi
pass "no key server configured: '$(cat "$W/err")'"

# ---- one vocabulary: the provider's environment variables configure the CLI too
unset KEYWARD_SERVER KEYWARD_CERT KEYWARD_KEY KEYWARD_SERVERS KEYWARD_CLIENT_CERT \
    KEYWARD_CLIENT_KEY KEYWARD_CA KEYWARD_TIMEOUT_MS
KEYWARD_SERVERS=127.0.0.1:$PORT KEYWARD_CLIENT_CERT=$PKI/edge.crt KEYWARD_CLIENT_KEY=$PKI/edge.key \
    KEYWARD_CA=$PKI/ca.crt "$KW_BIN/keyward" ping --count 1 >"$W/out" 2>"$W/err" ||
    fail "ping with the provider's environment variables: $(cat "$W/err")"
pass "KEYWARD_SERVERS, KEYWARD_CLIENT_CERT, KEYWARD_CLIENT_KEY, KEYWARD_CA"
KEYWARD_SERVER=127.0.0.1:$PORT KEYWARD_CERT=$PKI/edge.crt KEYWARD_KEY=$PKI/edge.key \
    KEYWARD_CA=$PKI/ca.crt "$KW_BIN/keyward" ping --count 1 >"$W/out" 2>"$W/err" ||
    fail "ping with the old environment variables: $(cat "$W/err")"
pass "old spellings KEYWARD_SERVER, KEYWARD_CERT, KEYWARD_KEY still work"
# both set: the provider's name wins (the old ones point at a rogue identity and a down server)
DOWN=$(free_port)
KEYWARD_SERVERS=127.0.0.1:$PORT KEYWARD_CLIENT_CERT=$PKI/edge.crt KEYWARD_CLIENT_KEY=$PKI/edge.key \
    KEYWARD_SERVER=127.0.0.1:$DOWN KEYWARD_CERT=$PKI/rogue.crt KEYWARD_KEY=$PKI/rogue.key \
    KEYWARD_CA=$PKI/ca.crt "$KW_BIN/keyward" ping --count 1 >"$W/out" 2>"$W/err" ||
    fail "ping with both spellings set: $(cat "$W/err")"
pass "with both spellings set the provider's wins"
# the flags --client-cert/--client-key (keyward-proxy's and the provider's words) work in the CLI
"$KW_BIN/keyward" ping --count 1 --server "127.0.0.1:$PORT" --client-cert "$PKI/edge.crt" \
    --client-key "$PKI/edge.key" --ca "$PKI/ca.crt" >"$W/out" 2>"$W/err" ||
    fail "ping --client-cert/--client-key: $(cat "$W/err")"
pass "--client-cert/--client-key"
# KEYWARD_TIMEOUT_MS: a frozen key server gives up after it
kill -STOP "$KS_PID"
start=$(date +%s%N)
rc=0
KEYWARD_TIMEOUT_MS=700 kw_cli "$PORT" ping --count 1 >"$W/out" 2>"$W/err" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
kill -CONT "$KS_PID"
[ "$rc" = 1 ] && grep -q "no answer within 700 ms" "$W/err" ||
    fail "KEYWARD_TIMEOUT_MS=700: exit $rc after $ms ms: $(cat "$W/err")"
expect_fail 2 "KEYWARD_TIMEOUT_MS" env KEYWARD_TIMEOUT_MS=soon "$KW_BIN/keyward" ping \
    --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" --key "$PKI/edge.key" --ca "$PKI/ca.crt"
pass "KEYWARD_TIMEOUT_MS (gave up after $ms ms; a bad value is named)"
"$KW_BIN/keyward" ping --help | kw_grep KEYWARD_SERVERS || fail "ping --help lacks KEYWARD_SERVERS"
