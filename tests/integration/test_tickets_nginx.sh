#!/bin/bash
# Sessions resume between keyward-proxy and an unmodified nginx in the same fleet (issue 19):
# Debian's nginx, as deployed (root master, daemonised, `user www-data;` workers, key stubs
# through the provider), reads the fleet's ticket keys from `keyward tickets --format nginx`
# (ssl_session_ticket_key current, previous, next); keyward-proxy runs --tickets-from-keyserver
# with --session-context nginx and the same certificate. A TLS 1.3 and a TLS 1.2 session from
# keyward-proxy resumes at nginx, and one from nginx at keyward-proxy, with no key operation in
# the audit log; with keyward-proxy's default session-id context nginx's sessions do not resume.
. "$(dirname "$0")/lib-deploy.sh"

command -v nginx >/dev/null || fail "nginx is not installed (scripts/install-deps.sh)"
proxy_remote_ok || fail "keyward.so or keyward-keyserver not built"
head -c 32 /dev/urandom >"$KW_TMP/secret"
chmod 600 "$KW_TMP/secret"
DEPLOY_KS_ARGS=(--ticket-secret "$KW_TMP/secret" --allow "cn:edge=*,tickets")
deploy_setup
NGX=$KW_TMP/nginx
mkdir -p "$NGX/tickets"
chmod 700 "$NGX/tickets"
"$KW_BIN/keyward" tickets --server "127.0.0.1:$KS_PORT" --cert "$EDGE/edge.crt" \
    --key "$EDGE/edge.key" --ca "$EDGE/ca.crt" --format nginx --out "$NGX/tickets" \
    >"$KW_TMP/tickets.out" 2>&1 || fail "keyward tickets: $(cat "$KW_TMP/tickets.out")"
pass "keyward tickets --format nginx: $(cat "$KW_TMP/tickets.out")"

NP=$(free_port)
deploy_nginx "$NGX" "$(nginx_server "$NP" "$SITE/ecdsa-p256.crt" "$SITE/ecdsa-p256.stub" \
    "hello nginx" "        ssl_session_ticket_key $NGX/tickets/current.key;
        ssl_session_ticket_key $NGX/tickets/previous.key;
        ssl_session_ticket_key $NGX/tickets/next.key;")" "$NP"

BP=$(free_port)
start_backend backend "$BP"
PX=$(free_port)
PD=$(free_port)
PXARGS=(--backend "127.0.0.1:$BP" --cert "$SITE/ecdsa-p256.crt" --keyserver "127.0.0.1:$KS_PORT"
    --client-cert "$EDGE/edge.crt" --client-key "$EDGE/edge.key" --ca "$EDGE/ca.crt"
    --provider "$KW_PROVIDER" --tickets-from-keyserver --threads 1)
start_proxy proxy "$PX" "${PXARGS[@]}" --session-context nginx
start_proxy proxy-default "$PD" "${PXARGS[@]}"

sess() { # port tlsver out [s_client args]
    local port=$1 ver=$2 out=$3
    shift 3
    (printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.5) | timeout 10 openssl s_client \
        -connect "127.0.0.1:$port" -servername localhost -CAfile "$PKI/site-ca.crt" \
        "-tls$ver" "$@" >"$out" 2>&1 || true
}
key_ops() { kw_audit_count "$AUDIT" '"opcode":"ecdsa'; }

W=$KW_TMP/s
mkdir -p "$W"
for ver in 1_3 1_2; do
    sess "$PX" "$ver" "$W/p$ver" -sess_out "$W/from-proxy$ver"
    grep -q "^New," "$W/p$ver" || fail "TLS $ver: first handshake at keyward-proxy"
    before=$(key_ops)
    sess "$NP" "$ver" "$W/n$ver" -sess_in "$W/from-proxy$ver"
    grep -q "^Reused," "$W/n$ver" || fail "TLS $ver: keyward-proxy's session not resumed at nginx"
    [ "$(key_ops)" = "$before" ] || fail "TLS $ver: resumption at nginx cost a key operation"

    sess "$NP" "$ver" "$W/m$ver" -sess_out "$W/from-nginx$ver"
    grep -q "^New," "$W/m$ver" || fail "TLS $ver: first handshake at nginx"
    before=$(key_ops)
    sess "$PX" "$ver" "$W/q$ver" -sess_in "$W/from-nginx$ver"
    grep -q "^Reused," "$W/q$ver" || fail "TLS $ver: nginx's session not resumed at keyward-proxy"
    [ "$(key_ops)" = "$before" ] || fail "TLS $ver: resumption at keyward-proxy cost a key op"
    sess "$PD" "$ver" "$W/d$ver" -sess_in "$W/from-nginx$ver"
    grep -q "^New," "$W/d$ver" ||
        fail "TLS $ver: without --session-context nginx, nginx's session must not resume"
    pass "TLS ${ver/_/.}: keyward-proxy -> nginx and nginx -> keyward-proxy resume with no key operation; the default session-id context does not"
done
