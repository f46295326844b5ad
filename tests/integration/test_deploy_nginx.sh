#!/bin/bash
# Debian's nginx as its unit runs it: a root master, daemonised, `user www-data;` workers, the
# edge's credentials root-only. The master loads the key stubs through the keyward provider
# (`env OPENSSL_CONF;`); the www-data worker signs/decrypts on the key server. Every client x key
# x TLS mode handshake is checked, and audited (lib-deploy.sh).
. "$(dirname "$0")/lib-deploy.sh"

command -v nginx >/dev/null || fail "nginx is not installed (scripts/install-deps.sh)"
deploy_setup
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
NGX=$KW_TMP/nginx
mkdir -p "$NGX/tmp"
site() { # port name
    cat <<CONF
    server {
        listen 127.0.0.1:$1 ssl;
        server_name localhost;
        ssl_certificate $SITE/$2.crt;
        ssl_certificate_key $SITE/$2.stub;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256;
        location / { return 200 "hello $2\n"; }
    }
CONF
}
cat >"$NGX/nginx.conf" <<CONF
user www-data;
worker_processes 2;
pid $NGX/nginx.pid;
error_log $KW_TMP/nginx-error.log info;
env OPENSSL_CONF;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
$(site "$RSA_PORT" rsa2048)
$(site "$EC_PORT" ecdsa-p256)
}
CONF
deploy_at_exit deploy_kill_pidfile "$NGX/nginx.pid"
# Debian's unit: `nginx -t -q -g 'daemon on; master_process on;'`, then the same without -t.
env OPENSSL_CONF="$PROV_CNF" LD_PRELOAD="$(kw_provider_preload)" nginx -t -q -p "$NGX" \
    -c "$NGX/nginx.conf" -e "$KW_TMP/nginx-error.log" -g 'daemon on; master_process on;' \
    >"$KW_TMP/nginx-start.log" 2>&1 || fail "nginx -t refused the configuration"
env OPENSSL_CONF="$PROV_CNF" LD_PRELOAD="$(kw_provider_preload)" nginx -p "$NGX" \
    -c "$NGX/nginx.conf" -e "$KW_TMP/nginx-error.log" -g 'daemon on; master_process on;' \
    >>"$KW_TMP/nginx-start.log" 2>&1 || fail "nginx did not start"
MASTER=$(deploy_pid_of "$NGX/nginx.pid")
wait_port "$RSA_PORT" 15 || fail "nginx does not listen on $RSA_PORT"
wait_port "$EC_PORT" 5 || fail "nginx does not listen on $EC_PORT"
deploy_drops_privileges "nginx worker" "$MASTER" www-data
deploy_matrix nginx https "$RSA_PORT" "$EC_PORT" "hello (rsa2048|ecdsa-p256)"
