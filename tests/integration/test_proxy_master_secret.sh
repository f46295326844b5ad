#!/bin/bash
# keyward-proxy in master-secret mode (the default, issue 8): TLS 1.2 RSA key exchange through the
# proxy, with and without extended master secret, SHA-256 and SHA-384 PRFs, from openssl s_client
# and curl. The key server's audit log and metrics must show tls12-master-secret requests and no
# RSA decryption at all: the pre-master secret never left the key server. ECDHE and TLS 1.3 still
# work. With --no-master-secret (or no_master_secret: true in YAML) the proxy asks for the PMS
# (tls-rsa-decrypt) instead.
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || { echo "skip: keyward.so not built"; exit 0; }

KS=$(free_port)
MP=$(free_port)
AUDIT=$KW_TMP/audit.log
start_keyserver ks "$KS" --metrics "127.0.0.1:$MP" --audit-log "$AUDIT"
# shellcheck disable=SC2207
KEYARGS=($(proxy_ks_args "$KS"))
BP=$(free_port)
start_backend backend "$BP"

# A client config that turns extended master secret off (openssl 3.0 s_client has no flag).
printf '%s\n' "openssl_conf = init" "[init]" "ssl_conf = ssl_sect" "[ssl_sect]" \
    "system_default = sysdef" "[sysdef]" "Options = -ExtendedMasterSecret" >"$KW_TMP/noems.cnf"

count() { # count OPCODE-NAME: audit lines with that opcode
    grep -c "\"opcode\":\"$1\"" "$AUDIT" 2>/dev/null || true
}

wait_audit() { # wait_audit OPCODE N: until N lines with OPCODE were written (async writer)
    local tries=60
    while [ "$(count "$1")" -lt "$2" ] && [ $tries -gt 0 ]; do
        sleep 0.05
        tries=$((tries - 1))
    done
}

get() { # get PORT CLIENT_CONF [s_client args...]: one GET through s_client
    local port=$1 conf=$2
    shift 2
    printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' |
        OPENSSL_CONF=$conf timeout 10 openssl s_client -connect "127.0.0.1:$port" \
            -servername "${SNI:-localhost}" -CAfile "$PKI/site-ca.crt" -verify_return_error -ign_eof \
            "$@" 2>&1
}

expect_ok() { # expect_ok PORT WHAT PATTERN CLIENT_CONF [s_client args...]
    local port=$1 what=$2 pattern=$3 conf=$4 out
    shift 4
    out=$(get "$port" "$conf" "$@") || true
    echo "$out" >"$KW_TMP/client.log"
    # here-strings, not echo | grep -q: with pipefail an early grep exit can fail the pipeline
    grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "$what: not verified"
    grep -Eq "HTTP/1.[01] 200" <<<"$out" || fail "$what: no HTTP reply"
    grep -Eq "$pattern" <<<"$out" || fail "$what: expected /$pattern/"
    pass "$what"
}

curl_rsa() { # curl_rsa PORT: one GET with curl over TLS 1.2 RSA key exchange
    OPENSSL_CONF=/dev/null curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$1:127.0.0.1" --tls-max 1.2 --ciphers AES128-GCM-SHA256 \
        "https://localhost:$1/" >"$KW_TMP/curl.out" 2>&1 || fail "curl over TLS 1.2 RSA: $(cat "$KW_TMP/curl.out")"
    grep -q "backend" "$KW_TMP/curl.out" || fail "curl: no backend reply: $(cat "$KW_TMP/curl.out")"
}

rsa_handshakes() { # rsa_handshakes PORT LABEL: 5 TLS 1.2 RSA key exchanges
    local port=$1 label=$2
    expect_ok "$port" "$label: TLS 1.2 RSA, extended master secret" \
        "Extended master secret: yes" /dev/null -tls1_2 -cipher AES128-GCM-SHA256
    expect_ok "$port" "$label: TLS 1.2 RSA, no extended master secret" \
        "Extended master secret: no" "$KW_TMP/noems.cnf" -tls1_2 -cipher AES128-GCM-SHA256
    expect_ok "$port" "$label: TLS 1.2 RSA, SHA-384 PRF" "Cipher is AES256-GCM-SHA384" /dev/null \
        -tls1_2 -cipher AES256-GCM-SHA384
    expect_ok "$port" "$label: TLS 1.2 RSA, SHA-384 PRF, no EMS" "Extended master secret: no" \
        "$KW_TMP/noems.cnf" -tls1_2 -cipher AES256-GCM-SHA384
    curl_rsa "$port"
    pass "$label: curl over TLS 1.2 RSA key exchange"
}

# ---- default: master-secret mode ----
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" --cert "$PKI/certs/rsa2048.crt" \
    --cert "$PKI/certs/ecdsa-p256.crt" "${KEYARGS[@]}" --threads 1
grep -q "master-secret mode (0xA1)" "$KW_TMP/proxy.log" || fail "proxy did not log master-secret mode"
rsa_handshakes "$PP" "master-secret mode"
wait_audit tls12-master-secret 5
[ "$(count tls12-master-secret)" -eq 5 ] ||
    fail "expected 5 tls12-master-secret audit lines, got $(count tls12-master-secret)"
for op in tls-rsa-decrypt rsa-decrypt rsa-decrypt-raw; do
    [ "$(count "$op")" -eq 0 ] || fail "audit log shows $op requests in master-secret mode"
done
metrics=$(curl -sS --max-time 5 "http://127.0.0.1:$MP/metrics") || fail "metrics"
grep -Eq 'keyward_requests_total\{opcode="tls12-master-secret",result="ok"\} 5$' <<<"$metrics" ||
    fail "metrics: tls12-master-secret ok != 5"
if grep -E 'opcode="(tls-rsa-decrypt|rsa-decrypt|rsa-decrypt-raw)"' <<<"$metrics" |
    grep -Ev ' 0$' >/dev/null; then
    fail "metrics count RSA decryptions in master-secret mode"
fi
pass "5 tls12-master-secret requests, no rsa-decrypt / tls-rsa-decrypt (audit and metrics)"

# ECDHE and TLS 1.3 are unaffected (signatures), RSA and ECDSA sites alike.
expect_ok "$PP" "master-secret mode: TLS 1.2 ECDHE-RSA" "Cipher is ECDHE-RSA-AES128-GCM-SHA256" \
    /dev/null -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
expect_ok "$PP" "master-secret mode: TLS 1.3 RSA" "TLSv1.3" /dev/null -tls1_3 -sigalgs rsa_pss_rsae_sha256
SNI=ecdsa-p256.example expect_ok "$PP" "master-secret mode: TLS 1.3 ECDSA" "TLSv1.3" /dev/null -tls1_3 \
    -sigalgs ecdsa_secp256r1_sha256
SNI=ecdsa-p256.example expect_ok "$PP" "master-secret mode: TLS 1.2 ECDHE-ECDSA" "ECDHE-ECDSA-AES128-GCM-SHA256" \
    /dev/null -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
[ "$(count tls12-master-secret)" -eq 5 ] || fail "ECDHE / TLS 1.3 made master-secret requests"
[ "$(count tls-rsa-decrypt)" -eq 0 ] || fail "ECDHE / TLS 1.3 made RSA decryptions"
kill "$PROXY_PID"

# ---- --no-master-secret: the PMS comes from the key server (tls-rsa-decrypt) ----
PN=$(free_port)
start_proxy proxy-nms "$PN" --backend "127.0.0.1:$BP" --cert "$PKI/certs/rsa2048.crt" \
    "${KEYARGS[@]}" --threads 1 --no-master-secret
grep -q "pre-master secret from the key server" "$KW_TMP/proxy-nms.log" ||
    fail "--no-master-secret not logged"
rsa_handshakes "$PN" "--no-master-secret"
wait_audit tls-rsa-decrypt 5
[ "$(count tls-rsa-decrypt)" -eq 5 ] ||
    fail "--no-master-secret: expected 5 tls-rsa-decrypt lines, got $(count tls-rsa-decrypt)"
[ "$(count tls12-master-secret)" -eq 5 ] || fail "--no-master-secret made master-secret requests"
pass "--no-master-secret: 5 tls-rsa-decrypt requests, no new tls12-master-secret"
kill "$PROXY_PID"

# ---- the same through YAML ----
PY=$(free_port)
write_proxy_yaml "$KW_TMP/proxy.yaml" "127.0.0.1:$PY" "127.0.0.1:$BP" "$PKI/certs/rsa2048.crt" \
    "127.0.0.1:$KS" "threads: 1
no_master_secret: true"
start_bg proxy-yaml "$KW_BIN/keyward-proxy" --config "$KW_TMP/proxy.yaml"
PROXY_PID=$LAST_PID
wait_port "$PY" 20 || fail "proxy-yaml did not start"
curl_rsa "$PY"
wait_audit tls-rsa-decrypt 6
[ "$(count tls-rsa-decrypt)" -eq 6 ] || fail "YAML no_master_secret: true not applied"
pass "YAML no_master_secret: true"
kill "$PROXY_PID"
