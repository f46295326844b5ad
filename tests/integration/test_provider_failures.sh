#!/bin/bash
# What goes wrong, and how the provider says so:
#  - key server down: handshakes fail cleanly, openssl s_server and nginx keep running and serve
#    again once the key server is back (same port);
#  - a server started while the key server is down still loads its stub (load_check = auto,
#    with a warning) and serves once the key server is up; load_check = strict refuses;
#  - unknown key id (URI or stub): a clear error at load time;
#  - a stub whose public key does not match the certificate: refused at load time.
. "$(dirname "$0")/lib.sh"

provider_setup
make_stubs rsa2048 rsa3072 ecdsa-p256

# a short request timeout: with the key server down, every handshake waits this long.
# PROVIDER_ENV runs a program with the provider; start_bg gets it as a plain command (env execs
# the program, so the recorded pid is the program's and cleanup stops it).
PROVIDER_ENV=(env OPENSSL_CONF="$KW_TMP/prov.cnf" KEYWARD_TIMEOUT_MS=1000 LD_PRELOAD="$PRELOAD")
provider() { "${PROVIDER_ENV[@]}" "$@"; }

serve() { # name cert key [args]: s_server -www; sets SS_PORT SS_PID
    local name=$1 cert=$2 key=$3
    shift 3
    SS_PORT=$(free_port)
    start_bg "$name" "${PROVIDER_ENV[@]}" openssl s_server -accept "127.0.0.1:$SS_PORT" \
        -cert "$PKI/certs/$cert.crt" -key "$key" -www "$@"
    SS_PID=$LAST_PID
    wait_port "$SS_PORT" 15 || fail "s_server $name did not start"
}

handshake_ok() { kw_https_get "$1" "${@:2}" | kw_grep "HTTP/1.0 200 ok"; }

# until_ok SECONDS CMD...: retries CMD until it succeeds.
until_ok() {
    local tries=$(($1 * 4))
    shift
    while [ "$tries" -gt 0 ]; do
        "$@" && return 0
        sleep 0.25
        tries=$((tries - 1))
    done
    return 1
}

stop_keyserver() {
    kill "$KS_PID"
    wait "$KS_PID" 2>/dev/null || true
}

# --- key server down and back: openssl s_server, blocking and -async
serve ss-sync rsa2048 "$KW_TMP/rsa2048.stub"
SYNC_PORT=$SS_PORT SYNC_PID=$SS_PID
serve ss-async ecdsa-p256 "$KW_TMP/ecdsa-p256.stub" -async
ASYNC_PORT=$SS_PORT ASYNC_PID=$SS_PID
handshake_ok "$SYNC_PORT" -tls1_2 -cipher AES128-GCM-SHA256 || fail "baseline handshake (sync)"
handshake_ok "$ASYNC_PORT" -tls1_3 || fail "baseline handshake (async)"
pass "s_server handshakes with the key server up"

stop_keyserver
for i in 1 2; do
    if handshake_ok "$SYNC_PORT" -tls1_2 -cipher AES128-GCM-SHA256; then
        fail "RSA key exchange succeeded with the key server down"
    fi
    if handshake_ok "$ASYNC_PORT" -tls1_3; then fail "ECDSA handshake succeeded, key server down"; fi
done
kill -0 "$SYNC_PID" 2>/dev/null || fail "s_server (sync) died when the key server went away"
kill -0 "$ASYNC_PID" 2>/dev/null || fail "s_server (async) died when the key server went away"
grep -q "key server unreachable" "$KW_TMP/ss-sync.log" ||
    fail "s_server log does not say the key server is unreachable"
pass "key server down: handshakes fail, s_server keeps running and logs why"

# a new server starting now loads its stub anyway (auto), but not with load_check = strict
serve ss-late rsa2048 "$KW_TMP/rsa2048.stub"
LATE_PORT=$SS_PORT
grep -q "warning: could not ask key server" "$KW_TMP/ss-late.log" ||
    fail "no warning when loading a stub with the key server down"
pass "stub loads with a warning while the key server is down (load_check = auto)"
out=$(provider KEYWARD_LOAD_CHECK=strict timeout 10 openssl s_server -accept 127.0.0.1:0 \
    -cert "$PKI/certs/rsa2048.crt" -key "$KW_TMP/rsa2048.stub" 2>&1 </dev/null) &&
    fail "strict load check accepted a key it could not check"
grep -q "key server unreachable" <<<"$out" || fail "strict load check: unclear error: $out"
pass "load_check = strict refuses a stub it cannot check"

start_keyserver ks2 "$KS_PORT"
until_ok 15 handshake_ok "$SYNC_PORT" -tls1_2 -cipher AES128-GCM-SHA256 ||
    fail "s_server (sync) did not recover after the key server came back"
until_ok 15 handshake_ok "$ASYNC_PORT" -tls1_3 || fail "s_server (async) did not recover"
until_ok 15 handshake_ok "$LATE_PORT" -tls1_3 || fail "s_server started while down did not recover"
pass "key server back: all three s_server processes serve again"

# --- the same with nginx (master + worker)
NGX=$KW_TMP/nginx
NGX_PORT=$(free_port)
write_nginx_conf "$NGX" 1 "$NGX/error.log" "    server {
        listen 127.0.0.1:$NGX_PORT ssl;
        ssl_certificate $PKI/certs/rsa2048.crt;
        ssl_certificate_key $KW_TMP/rsa2048.stub;
        location / { return 200 \"hello\n\"; }
    }"
start_bg nginx "${PROVIDER_ENV[@]}" nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log"
NGX_PID=$LAST_PID
wait_port "$NGX_PORT" 15 || fail "nginx did not start"
curl_ok() {
    OPENSSL_CONF=/dev/null curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$NGX_PORT:127.0.0.1" "https://localhost:$NGX_PORT/" >/dev/null 2>&1
}
curl_ok || fail "nginx baseline request"
stop_keyserver
if curl_ok; then fail "nginx served TLS with the key server down"; fi
kill -0 "$NGX_PID" 2>/dev/null || fail "nginx master died"
pgrep -P "$NGX_PID" >/dev/null || fail "nginx has no worker left"
grep -q "key server unreachable" "$NGX/error.log" || fail "nginx error log does not say why"
start_keyserver ks3 "$KS_PORT"
until_ok 15 curl_ok || fail "nginx did not recover after the key server came back"
pass "nginx: fails cleanly with the key server down, logs why, and recovers"
kill -QUIT "$NGX_PID" 2>/dev/null || true

# --- unknown key id: a clear error at load time
load_fails() { # what expect s_server-args...
    local what=$1 expect=$2 out
    shift 2
    out=$(provider timeout 20 openssl s_server -accept 127.0.0.1:0 "$@" 2>&1 </dev/null) &&
        fail "$what: s_server started"
    grep -q "$expect" <<<"$out" || fail "$what: unclear error: $out"
    pass "$what: $(echo "$out" | grep -o "$expect.*" | head -1 | cut -c1-110)"
}
BOGUS=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
load_fails "unknown key id in a URI" "key sha256=$BOGUS not found on key server" \
    -cert "$PKI/certs/rsa2048.crt" -key "keyward:sha256=$BOGUS"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null |
    openssl pkey -pubout >"$KW_TMP/other.pub"
"$KW_BIN/keyward" stub --pubkey "$KW_TMP/other.pub" --out "$KW_TMP/other.stub" 2>/dev/null
load_fails "stub of a key the key server lacks" "not found on key server 127.0.0.1:$KS_PORT" \
    -cert "$PKI/certs/ecdsa-p256.crt" -key "$KW_TMP/other.stub"
load_fails "malformed URI" "bad keyward URI" -cert "$PKI/certs/rsa2048.crt" -key keyward:sha256=xyz

# --- a stub that does not match the certificate: refused at load time
load_fails "stub vs another certificate (EC stub, RSA cert)" "does not match the certificate" \
    -cert "$PKI/certs/rsa2048.crt" -key "$KW_TMP/ecdsa-p256.stub"
load_fails "stub vs another certificate (RSA-3072 stub, RSA-2048 cert)" \
    "key values mismatch" -cert "$PKI/certs/rsa2048.crt" -key "$KW_TMP/rsa3072.stub"
# (nginx, like libssl, keeps keys per type and checks a key only against the certificate of
# its own type, so the mismatch to test there is another key of the same type)
sed "s|ssl_certificate_key .*;|ssl_certificate_key $KW_TMP/rsa3072.stub;|" \
    "$NGX/nginx.conf" >"$NGX/bad.conf"
out=$(provider nginx -t -p "$NGX" -c "$NGX/bad.conf" -e "$NGX/bad.log" 2>&1) &&
    fail "nginx -t accepted a stub that does not match the certificate"
grep -q "key values mismatch" "$NGX/bad.log" || fail "nginx -t: unclear error: $(cat "$NGX/bad.log")"
pass "nginx -t refuses a stub that does not match the certificate"
sed "s|ssl_certificate_key .*;|ssl_certificate_key $KW_TMP/other.stub;|; \
     s|rsa2048.crt|ecdsa-p256.crt|" "$NGX/nginx.conf" >"$NGX/unknown.conf"
out=$(provider nginx -t -p "$NGX" -c "$NGX/unknown.conf" -e "$NGX/unknown.log" 2>&1) &&
    fail "nginx -t accepted a stub of an unknown key"
grep -q "not found on key server" "$NGX/unknown.log" ||
    fail "nginx -t: unclear error for an unknown key: $(cat "$NGX/unknown.log")"
pass "nginx -t refuses a stub of a key the key server does not have"
