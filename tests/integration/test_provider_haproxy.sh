#!/bin/bash
# HAProxy 2.6 terminating TLS with a certificate + key stub PEM (the stub concatenated after the
# certificate, as HAProxy reads both from one file), keys on the key server through the keyward
# provider. Two ways to load the provider: OPENSSL_CONF, and HAProxy's own `ssl-provider keyward`
# with the settings in KEYWARD_* environment variables. curl fetches a page through it.
. "$(dirname "$0")/lib.sh"

command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/install-deps.sh)"
provider_setup
make_stubs rsa2048 ecdsa-p256
for k in rsa2048 ecdsa-p256; do
    cat "$PKI/certs/$k.crt" "$KW_TMP/$k.stub" >"$KW_TMP/$k.pem"
done

# haproxy_cfg FILE GLOBAL-LINES: one frontend per site answering "hello NAME".
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
haproxy_cfg() {
    cat >"$1" <<CFG
global
$2
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend rsa
    bind 127.0.0.1:$RSA_PORT ssl crt $KW_TMP/rsa2048.pem ssl-min-ver TLSv1.2
    http-request return status 200 content-type text/plain lf-string "hello rsa2048 %[ssl_fc_protocol] %[ssl_fc_cipher]\n"
frontend ec
    bind 127.0.0.1:$EC_PORT ssl crt $KW_TMP/ecdsa-p256.pem ssl-min-ver TLSv1.2
    http-request return status 200 content-type text/plain lf-string "hello ecdsa-p256 %[ssl_fc_protocol] %[ssl_fc_cipher]\n"
CFG
}

run_haproxy() { # name cfg env...
    # Foreground (-db) so start_bg owns the pid and its log: this test covers the provider's
    # key forms; HAProxy as Debian runs it (-Ws, user haproxy, RLIMIT_NPROC 0 in the worker) is
    # test_deploy_haproxy.sh.
    local name=$1 cfg=$2
    shift 2
    start_bg "$name" env "$@" LD_PRELOAD="$(kw_provider_preload)" haproxy -db -f "$cfg" # foreground on purpose: see above
    HA_PID=$LAST_PID
    wait_port "$RSA_PORT" 15 || fail "haproxy ($name) did not start"
    wait_port "$EC_PORT" 5 || fail "haproxy ($name) did not listen on the ECDSA port"
}

haproxy_cfg "$KW_TMP/ha-conf.cfg" "    maxconn 100"
run_haproxy haproxy-conf "$KW_TMP/ha-conf.cfg" OPENSSL_CONF="$KW_TMP/prov.cnf"
pass "haproxy loaded cert+stub PEMs (provider from OPENSSL_CONF)"
curl_expect "haproxy RSA TLS 1.2 RSA key exchange" "$RSA_PORT" "TLSv1.2 AES128-GCM-SHA256" \
    --tlsv1.2 --tls-max 1.2 --ciphers AES128-GCM-SHA256
curl_expect "haproxy RSA TLS 1.2 ECDHE-RSA" "$RSA_PORT" "TLSv1.2 ECDHE-RSA" --tlsv1.2 --tls-max 1.2
curl_expect "haproxy RSA TLS 1.3" "$RSA_PORT" "hello rsa2048 TLSv1.3" --tlsv1.3
curl_expect "haproxy ECDSA TLS 1.3" "$EC_PORT" "hello ecdsa-p256 TLSv1.3" --tlsv1.3
kill "$HA_PID"
wait "$HA_PID" 2>/dev/null || true

haproxy_cfg "$KW_TMP/ha-prov.cfg" "    ssl-provider-path $(dirname "$KW_PROVIDER")
    ssl-provider default
    ssl-provider keyward"
run_haproxy haproxy-prov "$KW_TMP/ha-prov.cfg" OPENSSL_CONF=/dev/null \
    KEYWARD_SERVERS="127.0.0.1:$KS_PORT" KEYWARD_CLIENT_CERT="$PKI/edge.crt" \
    KEYWARD_CLIENT_KEY="$PKI/edge.key" KEYWARD_CA="$PKI/ca.crt"
pass "haproxy loaded the provider itself (ssl-provider keyward, KEYWARD_* settings)"
curl_expect "haproxy ssl-provider RSA TLS 1.3" "$RSA_PORT" "hello rsa2048 TLSv1.3" --tlsv1.3
curl_expect "haproxy ssl-provider ECDSA TLS 1.2" "$EC_PORT" "TLSv1.2 ECDHE-ECDSA" --tlsv1.2 --tls-max 1.2
