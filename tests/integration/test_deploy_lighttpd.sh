#!/bin/bash
# Debian's lighttpd as its unit runs it (`lighttpd -tt -f CONF`, then `lighttpd -D -f CONF`) with
# server.username/groupname www-data, the edge's credentials root-only, OPENSSL_CONF in its
# environment (a systemd drop-in's Environment=). lighttpd loads the key stubs through the
# keyward provider as root, then drops to www-data and serves; every client x key x TLS mode
# handshake is checked, and audited (lib-deploy.sh).
. "$(dirname "$0")/lib-deploy.sh"

command -v lighttpd >/dev/null || fail "lighttpd is not installed (scripts/install-deps.sh)"
deploy_setup
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
mkdir -p "$KW_TMP/www"
echo "hello lighttpd" >"$KW_TMP/www/index.html"
chmod -R a+rX "$KW_TMP/www"
LOGDIR=$KW_TMP/lighttpd-log # like /var/log/lighttpd: www-data's, opened after the drop
mkdir -p "$LOGDIR"
chown www-data:www-data "$LOGDIR"
ln -s "$LOGDIR/error.log" "$KW_TMP/lighttpd-error.log" # (for fail's log dump)
cat >"$KW_TMP/lighttpd.conf" <<CONF
server.modules = ("mod_openssl")
server.document-root = "$KW_TMP/www"
server.errorlog = "$LOGDIR/error.log"
server.pid-file = "$KW_TMP/lighttpd.pid"
server.username = "www-data"
server.groupname = "www-data"
server.bind = "127.0.0.1"
server.port = $RSA_PORT
index-file.names = ("index.html")
ssl.engine = "enable"
ssl.pemfile = "$SITE/rsa2048.crt"
ssl.privkey = "$SITE/rsa2048.stub"
ssl.openssl.ssl-conf-cmd = ("MinProtocol" => "TLSv1.2",
    "CipherString" => "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256")
\$SERVER["socket"] == "127.0.0.1:$EC_PORT" {
    ssl.engine = "enable"
    ssl.pemfile = "$SITE/ecdsa-p256.crt"
    ssl.privkey = "$SITE/ecdsa-p256.stub"
}
CONF
export OPENSSL_CONF=$PROV_CNF
LD_PRELOAD="$(kw_provider_preload)" lighttpd -tt -f "$KW_TMP/lighttpd.conf" \
    >"$KW_TMP/lighttpd-tt.log" 2>&1 || fail "lighttpd -tt refused the configuration"
start_bg lighttpd env LD_PRELOAD="$(kw_provider_preload)" lighttpd -D -f "$KW_TMP/lighttpd.conf"
unset OPENSSL_CONF
LIGHTTPD_PID=$LAST_PID
wait_port "$RSA_PORT" 15 || fail "lighttpd does not listen on $RSA_PORT"
wait_port "$EC_PORT" 5 || fail "lighttpd does not listen on $EC_PORT"
deploy_drops_privileges "lighttpd" "$LIGHTTPD_PID" www-data
deploy_matrix lighttpd https "$RSA_PORT" "$EC_PORT" "hello lighttpd"
