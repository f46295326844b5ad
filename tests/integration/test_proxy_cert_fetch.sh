#!/bin/bash
# Certificate distribution (issue 5 item 3): keyward-proxy with no local certificate file gets
# its chains from the key server (--cert-from-keyserver, KWP 0xA2) by SNI name and by key id, and
# serves the right one by SNI to curl and s_client (RSA and ECDSA). A name the key server does not
# know stops the start. A leaf with less than a third of its lifetime left is fetched again; once
# the key server has a renewed certificate (SIGHUP), new handshakes get it. With --cert-recheck-s,
# an early renewal is picked up too, and an older certificate is never taken back.
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || { echo "skip: keyward.so not built"; exit 0; }

# A site "short.example" whose certificate is in its last third: valid from 2 days ago to 1 day
# from now (openssl ca, since openssl x509 -req cannot backdate).
mkdir -p "$KW_TMP/ca"
: >"$KW_TMP/ca/index.txt"
echo 1000 >"$KW_TMP/ca/serial"
printf '%s\n' "[ca]" "default_ca = ca_sect" "[ca_sect]" "database = $KW_TMP/ca/index.txt" \
    "new_certs_dir = $KW_TMP/ca" "serial = $KW_TMP/ca/serial" "default_md = sha256" \
    "policy = pol" "unique_subject = no" "[pol]" "commonName = supplied" >"$KW_TMP/ca.cnf"
printf '%s\n' "subjectAltName = DNS:short.example" "extendedKeyUsage = serverAuth" \
    "basicConstraints = critical,CA:FALSE" >"$KW_TMP/short.ext"
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=short.example" \
    -keyout "$PKI/keys/short.key" -out "$KW_TMP/short.csr" 2>/dev/null || fail "short: req"
sign_short() { # sign_short START END OUT: the short.example certificate valid START..END
    openssl ca -batch -config "$KW_TMP/ca.cnf" -cert "$PKI/site-ca.crt" -keyfile "$PKI/site-ca.key" \
        -in "$KW_TMP/short.csr" -startdate "$1" -enddate "$2" -extfile "$KW_TMP/short.ext" -notext \
        -out "$3" >/dev/null 2>&1 || fail "openssl ca: cannot sign short.example"
}
sign_short "$(date -u -d '-2 days' +%y%m%d%H%M%SZ)" "$(date -u -d '+1 day' +%y%m%d%H%M%SZ)" \
    "$PKI/keys/short.crt"
OLD_SERIAL=$(openssl x509 -in "$PKI/keys/short.crt" -noout -serial)

KS=$(free_port)
start_keyserver ks "$KS" --audit-log "$KW_TMP/audit.log"
# shellcheck disable=SC2207
KEYARGS=($(proxy_ks_args "$KS"))
BP=$(free_port)
start_backend backend "$BP"
P384=$(kw_keyid "$PKI/keys/ecdsa-p384.crt")

PP=$(free_port)
KEYWARD_PROXY_REFRESH_CHECK_MS=200 start_proxy proxy "$PP" --backend "127.0.0.1:$BP" \
    --cert-from-keyserver rsa2048.example --cert-from-keyserver ecdsa-p256.example \
    --cert-from-keyserver "sha256:$P384" --cert-from-keyserver short.example "${KEYARGS[@]}" \
    --threads 2
grep -q "fetched from the key server for rsa2048.example" "$KW_TMP/proxy.log" ||
    fail "proxy did not log the fetched certificate"
pass "keyward-proxy started without certificate files: 4 chains fetched"

# served NAME: the subject CN the proxy serves for SNI NAME (s_client, verified).
served() {
    printf 'GET / HTTP/1.0\r\n\r\n' |
        OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$PP" \
            -servername "$1" -CAfile "$PKI/site-ca.crt" -verify_return_error -verify_hostname "$1" \
            -ign_eof >"$KW_TMP/sclient.out" 2>&1 || true
    grep -q "Verify return code: 0 (ok)" "$KW_TMP/sclient.out" || fail "$1: not verified"
    openssl x509 -in "$KW_TMP/sclient.out" -noout -subject -serial 2>/dev/null
}

served_has() { # served_has NAME PATTERN (no pipe into grep -q: pipefail and SIGPIPE)
    local out
    out=$(served "$1")
    grep -q "$2" <<<"$out"
}

for name in rsa2048.example ecdsa-p256.example; do
    OPENSSL_CONF=/dev/null curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
        --resolve "$name:$PP:127.0.0.1" "https://$name:$PP/" >"$KW_TMP/curl.out" 2>&1 ||
        fail "curl https://$name: $(cat "$KW_TMP/curl.out")"
    grep -q "kw_backend" "$KW_TMP/curl.out" || fail "curl $name: no backend reply"
    served_has "$name" "CN *= *$name" || fail "$name: wrong certificate served"
    pass "curl and s_client to $name: its fetched chain, hostname verified"
done
served_has ecdsa-p384.example "CN *= *ecdsa-p384.example" ||
    fail "chain fetched by key id not served"
pass "chain fetched by sha256:<key id> served for ecdsa-p384.example"
served_has localhost "CN *= *rsa2048.example" || fail "default site is not the first"
pass "unknown/shared name gets the first fetched chain (rsa2048.example)"
# ECDSA TLS 1.3 and RSA TLS 1.2 handshakes use the key server's keys for fetched chains.
grep -q '"opcode":"ecdsa-sha256"' "$KW_TMP/audit.log" || sleep 1
grep -q '"opcode":"ecdsa-sha256"' "$KW_TMP/audit.log" || fail "no ECDSA signature on the key server"
[ "$(grep -c '"opcode":"get-cert-chain"' "$KW_TMP/audit.log")" -ge 4 ] ||
    fail "the key server's audit log lacks the 4 chain fetches"
pass "key server audit: get-cert-chain requests, ECDSA signatures for the fetched sites"

# short.example: due at once; the key server still has the old one, so it stays.
served_has short.example "$OLD_SERIAL" || fail "short.example: not the first certificate"
wait_for_line "$KW_TMP/proxy.log" "short.example expires soon and the key server has no newer one" "no refetch of short.example" 5
pass "short.example (last third of its lifetime) fetched again; no newer one yet"

# Renewed on the key server: valid from 1 hour ago for 30 days, same key; SIGHUP reloads.
sign_short "$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" "$(date -u -d '+30 days' +%y%m%d%H%M%SZ)" \
    "$KW_TMP/short-new.crt"
NEW_SERIAL=$(openssl x509 -in "$KW_TMP/short-new.crt" -noout -serial)
[ "$NEW_SERIAL" != "$OLD_SERIAL" ] || fail "renewed certificate has the old serial"
cat "$KW_TMP/short-new.crt" "$PKI/site-ca.crt" >"$PKI/keys/short.crt" # a chain of two this time
kill -HUP "$KS_PID"
wait_for_line "$KW_TMP/proxy.log" "certificate for short.example renewed from the key server" "short.example was not renewed after the key server's reload" 5
served_has short.example "$NEW_SERIAL" || fail "short.example: renewed certificate not served"
grep -q "^ 1 s:" "$KW_TMP/sclient.out" ||
    fail "short.example: the chain's second certificate was not sent"
pass "renewed certificate (leaf + CA chain) fetched and served to new handshakes ($NEW_SERIAL)"
sleep 0.5
[ "$(grep -c "renewed from the key server" "$KW_TMP/proxy.log")" = 1 ] ||
    fail "the renewed certificate (not due) was fetched again"
served_has rsa2048.example "CN *= *rsa2048.example" || fail "rsa2048.example after the swap"
pass "other sites unchanged after the swap"
kill "$PROXY_PID"
rc=0
wait "$PROXY_PID" || rc=$?
if [ "$rc" != 0 ] || ! grep -q "stopped:" "$KW_TMP/proxy.log"; then
    fail "proxy did not stop cleanly ($rc)"
fi
pass "SIGTERM with the refresh timer running: clean stop"

# --cert-recheck-s: a certificate far from its end is replaced as soon as the key server has a
# newer one (renewed early, e.g. after a key compromise), and an older one is never taken back.
cp "$PKI/keys/short.crt" "$KW_TMP/short-30d.crt"
PP=$(free_port)
KEYWARD_PROXY_REFRESH_CHECK_MS=200 start_proxy proxy2 "$PP" --backend "127.0.0.1:$BP" \
    --cert-from-keyserver short.example --cert-recheck-s 1 "${KEYARGS[@]}" --threads 1
served_has short.example "$NEW_SERIAL" || fail "recheck: proxy2 does not serve $NEW_SERIAL"
sign_short "$(date -u -d '-10 minutes' +%y%m%d%H%M%SZ)" "$(date -u -d '+30 days' +%y%m%d%H%M%SZ)" \
    "$PKI/keys/short.crt"
EARLY_SERIAL=$(openssl x509 -in "$PKI/keys/short.crt" -noout -serial)
kill -HUP "$KS_PID"
wait_for_line "$KW_TMP/proxy2.log" "certificate for short.example renewed from the key server" "recheck: the early renewal was not picked up" 10
served_has short.example "$EARLY_SERIAL" || fail "recheck: $EARLY_SERIAL not served"
pass "--cert-recheck-s 1: an early renewal (not near expiry) served at once ($EARLY_SERIAL)"
cp "$KW_TMP/short-30d.crt" "$PKI/keys/short.crt"
kill -HUP "$KS_PID"
wait_for_line "$KW_TMP/proxy2.log" "offers an older certificate for short.example" "recheck: the older certificate was not noticed" 10
served_has short.example "$EARLY_SERIAL" || fail "recheck: rolled back to an older certificate"
pass "an older certificate on the key server is not taken back"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true

# Refusals at start: an unknown name, no key server.
refuse() { # refuse WHAT PATTERN ARGS...
    local what=$1 pattern=$2 rc=0
    shift 2
    timeout 20 "$KW_BIN/keyward-proxy" --listen "127.0.0.1:$(free_port)" \
        --backend "127.0.0.1:$BP" "$@" >"$KW_TMP/refuse.out" 2>&1 || rc=$?
    [ "$rc" != 0 ] || fail "$what: keyward-proxy started"
    grep -q "$pattern" "$KW_TMP/refuse.out" || fail "$what: $(cat "$KW_TMP/refuse.out")"
    pass "refused: $what"
}
refuse "a name the key server does not know" "no certificate chain for nosuch.example" \
    --cert-from-keyserver nosuch.example "${KEYARGS[@]}"
refuse "--cert-from-keyserver without a key server" "needs a key server" \
    --cert-from-keyserver rsa2048.example
refuse "a malformed key id" "neither a DNS name nor sha256" \
    --cert-from-keyserver "sha256:1234" "${KEYARGS[@]}"
