#!/bin/bash
# Debian's nginx 1.22 with ssl_certificate_key pointing at key stubs: the master loads the stubs
# through the keyward provider (OPENSSL_CONF) and forks a worker, which signs/decrypts on the key
# server. curl fetches a page over TLS 1.2 (RSA key exchange and ECDHE) and TLS 1.3, for an RSA
# and an ECDSA site.
. "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || fail "nginx is not installed (scripts/install-deps.sh)"
provider_setup
make_stubs rsa2048 ecdsa-p256

RSA_PORT=$(free_port)
EC_PORT=$(free_port)
NGX=$KW_TMP/nginx
site() { # port name
    nginx_server "$1" "$PKI/certs/$2.crt" "$KW_TMP/$2.stub" "hello $2 \$ssl_protocol \$ssl_cipher" \
        "        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256;
        ssl_session_cache off;
        ssl_session_tickets off;"
}
write_nginx_conf "$NGX" 1 "$KW_TMP/nginx-error.log" "$(site "$RSA_PORT" rsa2048)
$(site "$EC_PORT" ecdsa-p256)"

start_bg nginx env OPENSSL_CONF="$KW_TMP/prov.cnf" LD_PRELOAD="$(kw_provider_preload)" \
    nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$KW_TMP/nginx-error.log"
NGX_PID=$LAST_PID
wait_port "$RSA_PORT" 15 || fail "nginx did not start" # fail prints nginx-error.log
wait_port "$EC_PORT" 5 || fail "nginx did not listen on the ECDSA port"
pgrep -P "$NGX_PID" >/dev/null || fail "nginx master has no worker process"
pass "nginx started with key stubs (master pid $NGX_PID, worker forked)"

curl_expect "nginx RSA TLS 1.2 RSA key exchange" "$RSA_PORT" "TLSv1.2 AES128-GCM-SHA256" \
    --tlsv1.2 --tls-max 1.2 --ciphers AES128-GCM-SHA256
curl_expect "nginx RSA TLS 1.2 ECDHE-RSA" "$RSA_PORT" "TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256" \
    --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256
curl_expect "nginx RSA TLS 1.3" "$RSA_PORT" "hello rsa2048 TLSv1.3" --tlsv1.3
curl_expect "nginx ECDSA TLS 1.2 ECDHE-ECDSA" "$EC_PORT" "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256" \
    --tlsv1.2 --tls-max 1.2
curl_expect "nginx ECDSA TLS 1.3" "$EC_PORT" "hello ecdsa-p256 TLSv1.3" --tlsv1.3

# several connections in a row through the same worker (its client reuses its key server link)
for i in 1 2 3 4 5; do
    OPENSSL_CONF=/dev/null curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$EC_PORT:127.0.0.1" "https://localhost:$EC_PORT/" >/dev/null ||
        fail "repeated request $i"
done
pass "5 more TLS 1.3 connections"
kill -QUIT "$NGX_PID" 2>/dev/null || true
