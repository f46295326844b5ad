#!/bin/bash
# Debian's Apache 2.4, event MPM, started as Debian does (apache2ctl with its own APACHE_CONFDIR,
# whose envvars sets User/Group www-data and exports OPENSSL_CONF), the edge's credentials
# root-only. The root parent loads the key stubs through the keyward provider; the www-data
# children sign/decrypt on the key server. Every client x key x TLS mode handshake is checked,
# and audited (lib-deploy.sh). Also the trap: `SetEnv OPENSSL_CONF` (a per-request variable)
# does not reach OpenSSL, so the stub cannot be loaded and Apache does not start.
. "$(dirname "$0")/lib-deploy.sh"

command -v apache2ctl >/dev/null || fail "apache2 is not installed (scripts/install-deps.sh)"
deploy_setup
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
MODS=/usr/lib/apache2/modules
mkdir -p "$KW_TMP/www"
echo "hello apache" >"$KW_TMP/www/index.html"
chmod -R a+rX "$KW_TMP/www"

# apache_confdir DIR ENVVARS_EXTRA CONF_EXTRA: DIR/envvars (like Debian's) and DIR/apache2.conf.
apache_confdir() {
    local dir=$1 site port name
    mkdir -p "$dir/run" "$dir/lock" "$dir/log"
    cat >"$dir/envvars" <<ENV
unset HOME
export APACHE_RUN_USER=www-data
export APACHE_RUN_GROUP=www-data
export APACHE_PID_FILE=$dir/run/apache2.pid
export APACHE_RUN_DIR=$dir/run
export APACHE_LOCK_DIR=$dir/lock
export APACHE_LOG_DIR=$dir/log
export LANG=C
$2
ENV
    cat >"$dir/apache2.conf" <<CONF
DefaultRuntimeDir \${APACHE_RUN_DIR}
PidFile \${APACHE_PID_FILE}
Mutex file:\${APACHE_LOCK_DIR} default
User \${APACHE_RUN_USER}
Group \${APACHE_RUN_GROUP}
ErrorLog $KW_TMP/$(basename "$dir")-error.log
LogLevel info
LoadModule mpm_event_module $MODS/mod_mpm_event.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule env_module $MODS/mod_env.so
LoadModule dir_module $MODS/mod_dir.so
LoadModule ssl_module $MODS/mod_ssl.so
StartServers 2
ServerName localhost
DocumentRoot $KW_TMP/www
DirectoryIndex index.html
<Directory $KW_TMP/www>
    Require all granted
</Directory>
SSLSessionCache none
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLCipherSuite ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256
$3
CONF
    for site in "$RSA_PORT rsa2048" "$EC_PORT ecdsa-p256"; do
        read -r port name <<<"$site"
        cat >>"$dir/apache2.conf" <<CONF
Listen 127.0.0.1:$port
<VirtualHost 127.0.0.1:$port>
    SSLEngine on
    SSLCertificateFile $SITE/$name.crt
    SSLCertificateKeyFile $SITE/$name.stub
</VirtualHost>
CONF
    done
}

# The trap first: OPENSSL_CONF only as SetEnv -> the stub is not a key OpenSSL can read.
apache_confdir "$KW_TMP/apache-setenv" "" "SetEnv OPENSSL_CONF $PROV_CNF"
deploy_at_exit deploy_kill_pidfile "$KW_TMP/apache-setenv/run/apache2.pid"
if APACHE_CONFDIR=$KW_TMP/apache-setenv apache2ctl start >"$KW_TMP/apache-setenv.log" 2>&1; then
    fail "Apache started with OPENSSL_CONF only in SetEnv (expected it to refuse the stub)"
fi
grep -q 'AH02564: Failed to configure encrypted (?) private key' "$KW_TMP/apache-setenv-error.log" ||
    fail "Apache with SetEnv only: expected AH02564 (the stub is not a key without the provider)"
pass "SetEnv OPENSSL_CONF is not enough: Apache refuses the stub (AH02564) and does not start"

# As Debian runs it: OPENSSL_CONF exported in envvars.
APC=$KW_TMP/apache
apache_confdir "$APC" "export OPENSSL_CONF=$PROV_CNF
export LD_PRELOAD=$(kw_provider_preload)" ""
deploy_at_exit deploy_kill_pidfile "$APC/run/apache2.pid"
APACHE_CONFDIR=$APC apache2ctl start >"$KW_TMP/apache-start.log" 2>&1 ||
    fail "apache2ctl start failed"
PARENT=$(deploy_pid_of "$APC/run/apache2.pid")
wait_port "$RSA_PORT" 15 || fail "Apache does not listen on $RSA_PORT"
wait_port "$EC_PORT" 5 || fail "Apache does not listen on $EC_PORT"
APACHE_CONFDIR=$APC apache2ctl -V 2>&1 | kw_grep -E 'Server MPM: +event' ||
    fail "Apache is not running the event MPM"
deploy_drops_privileges "Apache child" "$PARENT" www-data
deploy_matrix apache https "$RSA_PORT" "$EC_PORT" "hello apache"
