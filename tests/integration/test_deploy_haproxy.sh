#!/bin/bash
# Debian's HAProxy 2.6 as its unit runs it: `haproxy -Ws -f CFG -p PIDFILE` (master-worker), with
# Debian's global section (chroot, user/group haproxy, daemon) and WITHOUT insecure-fork-wanted,
# so the worker runs with RLIMIT_NPROC = 0 and may not create a thread. The edge's credentials are
# root-only; the `crt` is `cat site.crt site.stub`. The provider is loaded by HAProxy itself
# (`ssl-provider`, settings in KEYWARD_* as /etc/default/haproxy would set them) for the whole
# client x key x TLS mode matrix (lib-deploy.sh), then through OPENSSL_CONF.
. "$(dirname "$0")/lib-deploy.sh"

command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/install-deps.sh)"
deploy_setup
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
mkdir -m 755 "$KW_TMP/haproxy-chroot"

# haproxy_run NAME GLOBAL_EXTRA ENV...: writes NAME.cfg, starts haproxy -Ws, waits for both ports.
haproxy_run() {
    local name=$1 extra=$2
    shift 2
    cat >"$KW_TMP/$name.cfg" <<CFG
global
    chroot $KW_TMP/haproxy-chroot
    user haproxy
    group haproxy
    daemon
    log stderr format raw local0 info
$extra
defaults
    mode http
    log global
    option httpslog
    error-log-format "%ci:%cp %ft ssl error: %[ssl_fc_err_str]"
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend rsa
    bind 127.0.0.1:$RSA_PORT ssl crt $SITE/rsa2048.pem ssl-min-ver TLSv1.2 ciphers ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256
    http-request return status 200 content-type text/plain string "hello haproxy\n"
frontend ec
    bind 127.0.0.1:$EC_PORT ssl crt $SITE/ecdsa-p256.pem ssl-min-ver TLSv1.2
    http-request return status 200 content-type text/plain string "hello haproxy\n"
CFG
    deploy_at_exit deploy_kill_pidfile "$KW_TMP/$name.pid"
    start_bg "$name" env "$@" LD_PRELOAD="$(kw_provider_preload)" \
        haproxy -Ws -f "$KW_TMP/$name.cfg" -p "$KW_TMP/$name.pid"
    wait_port "$RSA_PORT" 15 || fail "haproxy ($name) does not listen on $RSA_PORT"
    wait_port "$EC_PORT" 5 || fail "haproxy ($name) does not listen on $EC_PORT"
    HA_MASTER=$(deploy_pid_of "$KW_TMP/$name.pid")
    deploy_drops_privileges "haproxy worker ($name)" "$HA_MASTER" haproxy
    local w
    for w in $(pgrep -P "$HA_MASTER"); do
        grep -Eq '^Max processes +0 +0' "/proc/$w/limits" ||
            fail "haproxy worker $w: RLIMIT_NPROC is not 0 ($(grep 'Max processes' "/proc/$w/limits"))"
    done
    pass "haproxy ($name): workers run with RLIMIT_NPROC 0"
}

haproxy_run haproxy-prov "    ssl-provider-path $(dirname "$KW_PROVIDER")
    ssl-provider default
    ssl-provider keyward" OPENSSL_CONF=/dev/null KEYWARD_SERVERS="127.0.0.1:$KS_PORT" \
    KEYWARD_CLIENT_CERT="$EDGE/edge.crt" KEYWARD_CLIENT_KEY="$EDGE/edge.key" \
    KEYWARD_CA="$EDGE/ca.crt"
deploy_matrix haproxy https "$RSA_PORT" "$EC_PORT" "hello haproxy"
deploy_kill_pidfile "$KW_TMP/haproxy-prov.pid"

haproxy_run haproxy-conf "" OPENSSL_CONF="$PROV_CNF"
deploy_short_matrix "haproxy with the provider from OPENSSL_CONF" "$RSA_PORT" "$EC_PORT" "hello haproxy"
