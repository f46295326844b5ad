#!/bin/bash
# Node.js (https) and Python (ssl module) servers loading the key stubs through OpenSSL and the
# keyward provider, then dropping privileges to www-data (tests/integration/deploy/server.*), the
# edge's credentials root-only. Node reads the `nodejs_conf` section of OPENSSL_CONF unless
# started with --openssl-shared-config: both ways are tried. Every client x key x TLS mode
# handshake is checked, and audited (lib-deploy.sh).
. "$(dirname "$0")/lib-deploy.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null || fail "node is not installed (scripts/install-deps.sh: nodejs)"
PY=/usr/bin/python3 # Debian's Python, linked to the system's OpenSSL 3
[ -x "$PY" ] || PY=python3
deploy_setup

# run_server NAME CMD...: starts a server on two new ports (RSA, ECDSA) as root, which drops to
# www-data once it listens; sets RSA_PORT, EC_PORT.
run_server() {
    local name=$1
    shift
    RSA_PORT=$(free_port)
    EC_PORT=$(free_port)
    start_bg "$name" "$@" www-data "$RSA_PORT" "$SITE/rsa2048.crt" "$SITE/rsa2048.stub" \
        "$EC_PORT" "$SITE/ecdsa-p256.crt" "$SITE/ecdsa-p256.stub"
    wait_for_line "$KW_TMP/$name.log" 'serving as www-data' "$name did not start" 20
    pass "$name: $(head -n 1 "$KW_TMP/$name.log")"
    deploy_drops_privileges "$name" "$LAST_PID" www-data
}

# Python: OPENSSL_CONF is all it needs.
run_server python env OPENSSL_CONF="$PROV_CNF" LD_PRELOAD="$(kw_provider_preload)" \
    "$PY" "$HERE/deploy/server.py"
deploy_matrix python https "$RSA_PORT" "$EC_PORT" "hello python"

# Node: which OpenSSL (Debian 12's nodejs links the system's libssl3; other builds bundle one).
if ldd "$(command -v node)" 2>/dev/null | kw_grep 'libssl\.so\.3'; then
    pass "node links the system's OpenSSL ($(node -p process.versions.openssl))"
else
    pass "node bundles OpenSSL $(node -p process.versions.openssl) (not Debian's nodejs); the provider loads into it too"
fi
run_server node-shared env OPENSSL_CONF="$PROV_CNF" LD_PRELOAD="$(kw_provider_preload)" \
    node --openssl-shared-config "$HERE/deploy/server.js"
deploy_matrix "node --openssl-shared-config" https "$RSA_PORT" "$EC_PORT" "hello node"

# The trap: an openssl_conf-only file without the flag -> Node never loads the provider.
if out=$(OPENSSL_CONF=$PROV_CNF node -e "require('tls').createSecureContext({cert:
    require('fs').readFileSync('$SITE/rsa2048.crt'), key: require('fs').readFileSync('$SITE/rsa2048.stub')})" 2>&1); then
    fail "node loaded the stub without --openssl-shared-config or a nodejs_conf section"
fi
pass "node without --openssl-shared-config ignores openssl_conf: $(grep -m1 -o 'Error: .*' <<<"$out")"

# Without the flag, Node reads the section named by nodejs_conf.
deploy_openssl_conf "$KW_TMP/etc/nodejs.cnf" "nodejs_conf = openssl_init"
run_server node-section env OPENSSL_CONF="$KW_TMP/etc/nodejs.cnf" \
    LD_PRELOAD="$(kw_provider_preload)" node "$HERE/deploy/server.js"
deploy_short_matrix "node with a nodejs_conf section" "$RSA_PORT" "$EC_PORT" "hello node"
