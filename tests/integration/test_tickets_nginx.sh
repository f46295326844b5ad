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

key_ops() { kw_audit_count "$AUDIT" '"opcode":"ecdsa'; }

W=$KW_TMP/s
mkdir -p "$W"
# carry FROM TO TLSVER WHAT: a session from a full handshake at port FROM resumes at port TO with
# no key operation; it stays in $W/from-FROM-TLSVER.
carry() {
    local from=$1 to=$2 ver=$3 before
    tls_session "$from" "$ver" "$W/$from-$ver" -sess_out "$W/from-$from-$ver"
    grep -q "^New," "$W/$from-$ver" || fail "TLS $ver: first handshake for $4"
    before=$(key_ops)
    tls_session "$to" "$ver" "$W/$to-$ver" -sess_in "$W/from-$from-$ver"
    grep -q "^Reused," "$W/$to-$ver" || fail "TLS $ver: $4: not resumed"
    [ "$(key_ops)" = "$before" ] || fail "TLS $ver: $4: the resumption cost a key operation"
}
for ver in 1_3 1_2; do
    carry "$PX" "$NP" "$ver" "keyward-proxy's session at nginx"
    carry "$NP" "$PX" "$ver" "nginx's session at keyward-proxy"
    tls_session "$PD" "$ver" "$W/d$ver" -sess_in "$W/from-$NP-$ver"
    grep -q "^New," "$W/d$ver" ||
        fail "TLS $ver: without --session-context nginx, nginx's session must not resume"
    pass "TLS ${ver/_/.}: keyward-proxy -> nginx and nginx -> keyward-proxy resume with no key operation; the default session-id context does not"
done
