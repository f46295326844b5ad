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
CIPHERS="ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256;"
site() { # port name
    nginx_server "$1" "$SITE/$2.crt" "$SITE/$2.stub" "hello $2" "        $CIPHERS"
}
deploy_nginx "$KW_TMP/nginx" "$(site "$RSA_PORT" rsa2048)
$(site "$EC_PORT" ecdsa-p256)" "$RSA_PORT" "$EC_PORT"
deploy_matrix nginx https "$RSA_PORT" "$EC_PORT" "hello (rsa2048|ecdsa-p256)"
