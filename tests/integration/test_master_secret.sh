#!/bin/bash
# Master-secret mode (issue 8): openssl s_server with a key stub and master_secret_mode = yes
# (docs/master-secret.md) serves TLS 1.2 RSA key exchange with and without extended master secret,
# SHA-256 and SHA-384 PRFs, blocking and -async, to openssl s_client and curl. The key server's
# audit log (and metrics) must show only tls12-master-secret requests for those handshakes: the
# pre-master secret never left the key server. ECDHE and TLS 1.3 still work in that mode, and
# without the property preference the handle is refused rather than used as a PMS.
. "$(dirname "$0")/lib.sh"

make_pki
KS_PORT=$(free_port)
M_PORT=$(free_port)
AUDIT=$KW_TMP/audit.log
start_keyserver ks "$KS_PORT" --metrics "127.0.0.1:$M_PORT" --audit-log "$AUDIT"
write_openssl_conf_master "$KW_TMP/ms.cnf" "127.0.0.1:$KS_PORT"
PRELOAD=$(kw_provider_preload)
"$KW_BIN/keyward" stub --cert "$PKI/certs/rsa2048.crt" --out "$KW_TMP/rsa.stub" 2>/dev/null ||
    fail "keyward stub"

# A client config that turns extended master secret off (openssl 3.0 s_client has no flag).
printf '%s\n' "openssl_conf = init" "[init]" "ssl_conf = ssl_sect" "[ssl_sect]" \
    "system_default = sysdef" "[sysdef]" "Options = -ExtendedMasterSecret" >"$KW_TMP/noems.cnf"

serve() { # serve NAME CONF [s_server args...]; sets SS_PORT
    local name=$1 conf=$2
    shift 2
    SS_PORT=$(free_port)
    start_bg "$name" env OPENSSL_CONF="$conf" LD_PRELOAD="$PRELOAD" openssl s_server \
        -accept "127.0.0.1:$SS_PORT" -cert "$PKI/certs/rsa2048.crt" -key "$KW_TMP/rsa.stub" \
        -www -quiet "$@"
    wait_port "$SS_PORT" 15 || fail "s_server $name did not start"
}

get() { # get CLIENT_CONF [s_client args...]: one HTTPS GET through s_client
    local conf=$1
    shift
    printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' |
        OPENSSL_CONF=$conf timeout 10 openssl s_client -connect "127.0.0.1:$SS_PORT" \
            -servername localhost -CAfile "$PKI/site-ca.crt" -verify_return_error -ign_eof \
            "$@" 2>&1
}

expect_ok() { # expect_ok WHAT PATTERN CLIENT_CONF [s_client args...]
    local what=$1 pattern=$2 conf=$3 out
    shift 3
    out=$(get "$conf" "$@") || true
    echo "$out" >"$KW_TMP/client.log"
    grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "$what: not verified"
    grep -q "HTTP/1.0 200 ok" <<<"$out" || fail "$what: no HTTP reply"
    grep -Eq "$pattern" <<<"$out" || fail "$what: expected /$pattern/"
    pass "$what"
}

count() { # count OPCODE-NAME: audit lines with that opcode
    grep -c "\"opcode\":\"$1\"" "$AUDIT" 2>/dev/null || true
}

wait_audit() { # wait_audit N: until N tls12-master-secret lines were written (async writer)
    local tries=40
    while [ "$(count tls12-master-secret)" -lt "$1" ] && [ $tries -gt 0 ]; do
        sleep 0.05
        tries=$((tries - 1))
    done
}

n=0
for mode in sync async; do
    extra=()
    [ "$mode" = async ] && extra=(-async)
    serve "ss-$mode" "$KW_TMP/ms.cnf" "${extra[@]}"
    expect_ok "$mode: TLS 1.2 RSA, extended master secret" "Extended master secret: yes" \
        /dev/null -tls1_2 -cipher AES128-GCM-SHA256
    expect_ok "$mode: TLS 1.2 RSA, no extended master secret" "Extended master secret: no" \
        "$KW_TMP/noems.cnf" -tls1_2 -cipher AES128-GCM-SHA256
    expect_ok "$mode: TLS 1.2 RSA, SHA-384 PRF" "Cipher is AES256-GCM-SHA384" /dev/null -tls1_2 \
        -cipher AES256-GCM-SHA384
    expect_ok "$mode: TLS 1.2 RSA, SHA-384 PRF, no EMS" "Extended master secret: no" \
        "$KW_TMP/noems.cnf" -tls1_2 -cipher AES256-GCM-SHA384
    n=$((n + 4))
    if [ "$mode" = sync ]; then
        body=$(OPENSSL_CONF=/dev/null curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
            --resolve "localhost:$SS_PORT:127.0.0.1" --tls-max 1.2 --ciphers AES128-GCM-SHA256 \
            "https://localhost:$SS_PORT/") || fail "curl over TLS 1.2 RSA key exchange"
        grep -q "<HTML>" <<<"$body" || fail "curl: no page"
        n=$((n + 1))
        pass "curl: TLS 1.2 RSA key exchange"
    fi
    wait_audit "$n"
    [ "$(count tls12-master-secret)" -eq "$n" ] ||
        fail "expected $n tls12-master-secret audit lines, got $(count tls12-master-secret)"
    expect_ok "$mode: TLS 1.2 ECDHE-RSA still works" "Cipher is ECDHE-RSA-AES128-GCM-SHA256" \
        /dev/null -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
    expect_ok "$mode: TLS 1.3 still works" "TLSv1.3" /dev/null -tls1_3
done
pass "key server audit: $n tls12-master-secret requests"

# The PMS never left the key server: no RSA decryption request of any kind was made.
for op in tls-rsa-decrypt rsa-decrypt rsa-decrypt-raw; do
    [ "$(count "$op")" -eq 0 ] || fail "audit log shows $op requests in master-secret mode"
done
metrics=$(curl -sS --max-time 5 "http://127.0.0.1:$M_PORT/metrics") || fail "metrics"
grep -Eq 'keyward_requests_total\{opcode="tls12-master-secret",result="ok"\} ' <<<"$metrics""$n"'$' ||
    fail "metrics: tls12-master-secret ok != $n"
if echo "$metrics" | grep -E 'opcode="(tls-rsa-decrypt|rsa-decrypt|rsa-decrypt-raw)"' |
    grep -Evq ' 0$'; then
    fail "metrics count RSA decryptions in master-secret mode"
fi
pass "no rsa-decrypt / tls-rsa-decrypt request reached the key server (audit and metrics)"

# Without the property preference libssl uses the default TLS1-PRF, which receives the handle:
# the handshake must fail (the handle is not a PMS), and still no decryption reaches the network.
grep -v "default_properties" "$KW_TMP/ms.cnf" >"$KW_TMP/nopref.cnf"
serve ss-nopref "$KW_TMP/nopref.cnf"
out=$(get /dev/null -tls1_2 -cipher AES128-GCM-SHA256) || true
if grep -q "HTTP/1.0 200 ok" <<<"$out"; then
    fail "handshake succeeded with the handle used as a PMS"
fi
[ "$(count tls-rsa-decrypt)" -eq 0 ] || fail "tls-rsa-decrypt seen without the preference"
pass "without default_properties = ?keyward.prf=yes the handshake fails closed"
