#!/bin/bash
# keyward-proxy and an unmodified HAProxy 2.6 (as Debian runs it: -Ws, chroot, user haproxy,
# daemon) share session tickets (issue 19): HAProxy's tls-ticket-keys file comes from `keyward
# tickets --format haproxy` (its key layout and order), keyward-proxy runs
# --tickets-from-keyserver --session-context haproxy. With 4-second rotations, `keyward tickets
# --watch --haproxy-socket` hands HAProxy each new key on its admin socket (set ssl tls-key),
# so two rotations later sessions still resume both ways with no key operation.
. "$(dirname "$0")/lib-deploy.sh"

command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/install-deps.sh)"
proxy_remote_ok || fail "keyward.so or keyward-keyserver not built"
head -c 32 /dev/urandom >"$KW_TMP/secret"
chmod 600 "$KW_TMP/secret"
DEPLOY_KS_ARGS=(--ticket-secret "$KW_TMP/secret" --ticket-rotation-s 4
    --allow "cn:edge=*,tickets")
deploy_setup
HA=$KW_TMP/ha
mkdir -m 700 "$HA"
mkdir -m 755 "$KW_TMP/haproxy-chroot"
# The watch writes the key file now and again just after each rotation, handing HAProxy each new
# key on its admin socket (HAProxy reads the file only when it starts).
start_bg watch "$KW_BIN/keyward" tickets --server "127.0.0.1:$KS_PORT" --cert "$EDGE/edge.crt" \
    --key "$EDGE/edge.key" --ca "$EDGE/ca.crt" --format haproxy --out "$HA/tickets.keys" \
    --watch --haproxy-socket "$HA/admin.sock"
wait_for_line "$KW_TMP/watch.log" "wrote the ticket keys" "keyward tickets --watch wrote nothing" 10
[ "$(wc -l <"$HA/tickets.keys")" = 3 ] || fail "the HAProxy key file must have 3 lines"

HP=$(free_port)
cat >"$HA/haproxy.cfg" <<CFG
global
    chroot $KW_TMP/haproxy-chroot
    user haproxy
    group haproxy
    daemon
    stats socket $HA/admin.sock mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend ec
    bind 127.0.0.1:$HP ssl crt $SITE/ecdsa-p256.pem ssl-min-ver TLSv1.2 tls-ticket-keys $HA/tickets.keys
    http-request return status 200 content-type text/plain string "hello haproxy\n"
CFG
deploy_at_exit deploy_kill_pidfile "$HA/haproxy.pid"
start_bg haproxy env OPENSSL_CONF="$PROV_CNF" LD_PRELOAD="$(kw_provider_preload)" \
    haproxy -Ws -f "$HA/haproxy.cfg" -p "$HA/haproxy.pid"
wait_port "$HP" 15 || fail "haproxy does not listen: $(tail -5 "$KW_TMP/haproxy.log")"
deploy_drops_privileges "haproxy worker" "$(deploy_pid_of "$HA/haproxy.pid")" haproxy

BP=$(free_port)
start_backend backend "$BP"
PX=$(free_port)
start_proxy proxy "$PX" --backend "127.0.0.1:$BP" --cert "$SITE/ecdsa-p256.crt" \
    --keyserver "127.0.0.1:$KS_PORT" --client-cert "$EDGE/edge.crt" --client-key "$EDGE/edge.key" \
    --ca "$EDGE/ca.crt" --provider "$KW_PROVIDER" --tickets-from-keyserver \
    --session-context haproxy --threads 1

key_ops() { kw_audit_count "$AUDIT" '"opcode":"ecdsa'; }
# both_ways LABEL: TLS 1.3 and 1.2 sessions resume keyward-proxy -> HAProxy and back, no key op.
both_ways() {
    local ver before W=$KW_TMP/s-$1
    mkdir -p "$W"
    for ver in 1_3 1_2; do
        tls_session "$PX" "$ver" "$W/p$ver" -sess_out "$W/px$ver"
        before=$(key_ops)
        tls_session "$HP" "$ver" "$W/h$ver" -sess_in "$W/px$ver"
        grep -q "^Reused," "$W/h$ver" || fail "$1: TLS $ver: keyward-proxy's session not resumed at HAProxy"
        tls_session "$HP" "$ver" "$W/i$ver" -sess_out "$W/ha$ver"
        tls_session "$PX" "$ver" "$W/q$ver" -sess_in "$W/ha$ver"
        grep -q "^Reused," "$W/q$ver" || fail "$1: TLS $ver: HAProxy's session not resumed at keyward-proxy"
        [ "$(key_ops)" = "$((before + 1))" ] ||
            fail "$1: TLS $ver: expected only HAProxy's own full handshake to cost a key operation"
    done
    pass "$1: TLS 1.3 and 1.2 sessions resume keyward-proxy -> HAProxy and HAProxy -> keyward-proxy"
}
both_ways "start"

sleep 9
grep -q "HAProxy took the key of epoch" "$KW_TMP/watch.log" ||
    fail "keyward tickets --watch did not update HAProxy: $(tail -3 "$KW_TMP/watch.log")"
both_ways "two rotations later, keys given over the admin socket"
