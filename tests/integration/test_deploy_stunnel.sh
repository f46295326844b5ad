#!/bin/bash
# Debian's stunnel4 as its unit runs it (`stunnel4 FILE.conf`: daemonised, foreground = no) with
# setuid/setgid stunnel4, the edge's credentials root-only. stunnel loads the key stubs through the
# keyward provider (OPENSSL_CONF) as root, forks into the background and drops privileges; the
# stunnel4 daemon signs/decrypts on the key server and forwards to a plain HTTP backend. Every
# client x key x TLS mode handshake is checked, and audited (lib-deploy.sh).
. "$(dirname "$0")/lib-deploy.sh"

command -v stunnel4 >/dev/null || fail "stunnel4 is not installed (scripts/install-deps.sh)"
deploy_setup
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
BE_PORT=$(free_port)
start_backend backend "$BE_PORT"
RUN=$KW_TMP/stunnel-run # like /run/stunnel4: the daemon writes its pid file and log there
mkdir -p "$RUN"
chown stunnel4:stunnel4 "$RUN"
ln -s "$RUN/stunnel.log" "$KW_TMP/stunnel.log" # (for fail's log dump)
site() { # name port
    cat <<CONF
[$1]
accept = 127.0.0.1:$2
connect = 127.0.0.1:$BE_PORT
cert = $SITE/$1.crt
key = $SITE/$1.stub
sslVersionMin = TLSv1.2
ciphers = ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256
CONF
}
cat >"$KW_TMP/stunnel.conf" <<CONF
foreground = no
pid = $RUN/stunnel.pid
setuid = stunnel4
setgid = stunnel4
output = $RUN/stunnel.log
debug = info
$(site rsa2048 "$RSA_PORT")
$(site ecdsa-p256 "$EC_PORT")
CONF
deploy_at_exit deploy_kill_pidfile "$RUN/stunnel.pid"
env OPENSSL_CONF="$PROV_CNF" LD_PRELOAD="$(kw_provider_preload)" \
    stunnel4 "$KW_TMP/stunnel.conf" >"$KW_TMP/stunnel-start.log" 2>&1 || fail "stunnel4 did not start"
PID=$(deploy_pid_of "$RUN/stunnel.pid")
wait_port "$RSA_PORT" 15 || fail "stunnel does not listen on $RSA_PORT"
wait_port "$EC_PORT" 5 || fail "stunnel does not listen on $EC_PORT"
deploy_drops_privileges "stunnel daemon" "$PID" stunnel4
deploy_matrix stunnel https "$RSA_PORT" "$EC_PORT" "kw_backend backend"
