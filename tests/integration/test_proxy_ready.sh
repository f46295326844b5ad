#!/bin/bash
# keyward-proxy's metrics endpoint as an operator runs it (issue 18's leftovers):
#   --metrics-token-file: /metrics answers 401 without the bearer token, with another one, with a
#     longer one or with Basic, and 200 with it; the token never reaches the log; /health and
#     /ready need no token; --check-config refuses a token file readable by every user;
#   /ready: started while its key server is down, 503 naming the key server; the key server
#     started, 200 within a few seconds; /health 200 all along (the process is alive); a reload
#     that changes the key servers says /ready's probe keeps those of the start.
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || fail "needs the provider and the key server built"

KS=$(free_port) # nothing listens there yet
BP=$(free_port)
start_backend backend "$BP" --echo
# A key stub (the public key and its id): the proxy loads it with no key server to ask.
"$KW_BIN/keyward" stub --cert "$PKI/certs/ecdsa-p256.crt" --out "$KW_TMP/ecdsa.stub" >/dev/null 2>&1 ||
    fail "keyward stub"
TOKEN="px-$(openssl rand -hex 24)"
printf '%s\n' "$TOKEN" >"$KW_TMP/token"
chmod 600 "$KW_TMP/token"
PP=$(free_port)
MP=$(free_port)
write_proxy_yaml "$KW_TMP/proxy.yaml" "127.0.0.1:$PP" "127.0.0.1:$BP" "$PKI/certs/ecdsa-p256.crt,$KW_TMP/ecdsa.stub" \
    "127.0.0.1:$KS" "metrics: \"127.0.0.1:$MP\"
metrics_token_file: $KW_TMP/token
threads: 1"
start_proxy proxy "$PP" --config "$KW_TMP/proxy.yaml"
wait_port "$MP" 10 || fail "metrics listener"

http() { metrics_get "$MP" "$@"; } # PATH [curl args...]
[ "$(http /metrics)" = 401 ] || fail "/metrics without the token is not 401"
grep -q 'bearer token is required' "$KW_TMP/body" || fail "401 body: $(cat "$KW_TMP/body")"
[ "$(http /metrics -H 'Authorization: Bearer wrong-token-0123456789')" = 401 ] ||
    fail "a wrong token was accepted"
[ "$(http /metrics -H "Authorization: Bearer ${TOKEN}x")" = 401 ] || fail "a longer token was accepted"
[ "$(http /metrics -H "Authorization: Basic $TOKEN")" = 401 ] || fail "Basic was accepted"
[ "$(http /nothing)" = 401 ] || fail "another path without the token is not 401"
[ "$(http /metrics -H "Authorization: Bearer $TOKEN")" = 200 ] || fail "the right token was refused"
grep -q '^keyward_proxy_connections_total ' "$KW_TMP/body" || fail "no metrics with the token"
! grep -qF "$TOKEN" "$KW_TMP/proxy.log" || fail "the token is in the log"
grep -q 'bearer token required' "$KW_TMP/proxy.log" || fail "the log does not say a token is required"
pass "--metrics-token-file: 401 without the token, with another, a longer one or Basic; 200 with it; not logged"

# ---- /ready: key server down at start, then up ----
[ "$(http /health)" = 200 ] || fail "/health with the key server down: $(cat "$KW_TMP/body")"
[ "$(ready_code "$MP")" = 503 ] || fail "/ready with the key server down is not 503: $(cat "$KW_TMP/body")"
grep -q "no key server answers (127.0.0.1:$KS)" "$KW_TMP/body" ||
    fail "/ready with the key server down says: $(cat "$KW_TMP/body")"
down=$(cat "$KW_TMP/body")
pass "key server down: /health 200, /ready 503 '$down'"

start_keyserver ks "$KS"
t0=$(date +%s%N)
code=
for _ in $(seq 1 50); do
    code=$(http /ready)
    [ "$code" = 200 ] && break
    sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$code" = 200 ] || fail "/ready 5 s after the key server started: $code $(cat "$KW_TMP/body")"
grep -q 'key server answers' "$KW_TMP/body" || fail "/ready says: $(cat "$KW_TMP/body")"
ready=$(cat "$KW_TMP/body")
# and the proxy does serve now
printf 'hello\n' | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -quiet -connect "127.0.0.1:$PP" \
    -servername localhost -CAfile "$PKI/site-ca.crt" -verify_return_error >"$KW_TMP/echo" 2>&1 || true
grep -q hello "$KW_TMP/echo" || fail "echo through the ready proxy: $(cat "$KW_TMP/echo")"
pass "key server started: /ready 200 after $ms ms ('$ready'), a handshake through it works"

kill "$KS_PID"
wait "$KS_PID" 2>/dev/null || true
[ "$(http /ready)" = 503 ] || fail "/ready with the key server stopped again: $(cat "$KW_TMP/body")"
pass "key server stopped again: /ready 503"

# ---- SIGHUP with other key servers: handshakes take them, /ready's probe only at a restart ----
KS2=$(free_port)
sed -i "s|^keyservers: .*|keyservers: [\"127.0.0.1:$KS2\"]|" "$KW_TMP/proxy.yaml"
kill -HUP "$PROXY_PID"
wait_for_line "$KW_TMP/proxy.log" "reload: keyservers (for /ready's probe" \
    "a reload that changes the key servers does not say /ready keeps the old ones" 20
pass "a reload with other key servers says /ready's probe keeps those of the start"

# ---- --check-config: the token file is a secret ----
chmod 644 "$KW_TMP/token"
check_config_fails "$KW_BIN/keyward-proxy" "a token file readable by everyone" \
    "token is readable by every user" --config "$KW_TMP/proxy.yaml"
