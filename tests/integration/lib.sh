#!/bin/bash
# Shared helpers for integration tests: a scratch directory, a test PKI, free loopback ports,
# starting real processes and waiting for them, and cleaning everything up on exit.
# Source it: . "$(dirname "$0")/lib.sh". Needs KW_BUILD_DIR and KW_SOURCE_DIR (set by CTest).
set -euo pipefail

: "${KW_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${KW_BUILD_DIR:=$KW_SOURCE_DIR/build}"
KW_BIN=$KW_BUILD_DIR/bin
KW_TESTS=$KW_BUILD_DIR/tests
KW_PROVIDER=$KW_BUILD_DIR/lib/keyward.so
export KW_SOURCE_DIR KW_BUILD_DIR KW_BIN KW_TESTS KW_PROVIDER
# ASan builds: leaks are checked by the unit tests; servers are killed by signal here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

KW_TMP=$(mktemp -d /tmp/kwtest.XXXXXX)
KW_PIDS=()
export KW_TMP

kw_cleanup() {
    local pid
    for pid in "${KW_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${KW_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KW_KEEP_TMP:-0}" = 1 ]; then
        echo "kept $KW_TMP"
    else
        rm -rf "$KW_TMP"
    fi
}
trap kw_cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$KW_TMP"/*.log; do
        [ -f "$f" ] || continue
        echo "---- $f (last 40 lines)" >&2
        tail -n 40 "$f" >&2
    done
    exit 1
}

pass() {
    echo "ok: $*"
}

# A free TCP port on 127.0.0.1 (bound then released; collisions are unlikely but possible).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Makes (once per test) the test PKI in $KW_TMP/pki; see scripts/make-pki.sh for its files.
make_pki() {
    if [ ! -f "$KW_TMP/pki/ca.crt" ]; then
        sh "$KW_SOURCE_DIR/scripts/make-pki.sh" "$KW_TMP/pki" >/dev/null
    fi
    PKI=$KW_TMP/pki
    export PKI
}

# wait_port PORT [SECONDS]: waits until something listens on 127.0.0.1:PORT.
wait_port() {
    local port=$1 tries=$(( ${2:-10} * 20 ))
    while [ "$tries" -gt 0 ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
        tries=$((tries - 1))
    done
    return 1
}

# metrics_get PORT PATH [curl args...]: a daemon's metrics endpoint; prints the status code, the
# body is in $KW_TMP/body.
metrics_get() {
    local port=$1 path=$2
    shift 2
    curl -s -o "$KW_TMP/body" -w '%{http_code}' --max-time 10 "$@" "http://127.0.0.1:$port$path" || true
}

# ready_code PORT: /ready's status once the daemon has started. The metrics listener opens before
# the event loops run and says 503 "starting" until they do (longer under ASan), so that is
# waited out, for up to 15 s; any other answer is printed as it is.
ready_code() {
    local code _
    for _ in $(seq 1 150); do
        code=$(metrics_get "$1" /ready)
        [ "$code" = 503 ] && [ "$(cat "$KW_TMP/body")" = starting ] || break
        sleep 0.1
    done
    printf '%s' "$code"
}

# start_bg NAME CMD...: starts CMD in the background, output in $KW_TMP/NAME.log; sets LAST_PID.
start_bg() {
    local name=$1
    shift
    "$@" >"$KW_TMP/$name.log" 2>&1 &
    LAST_PID=$!
    KW_PIDS+=("$LAST_PID")
}

# start_keyserver NAME PORT [extra args...]: starts keyward-keyserver with the test PKI and
# $PKI/keys, waits for its port; sets KS_PID.
start_keyserver() {
    local name=$1 port=$2
    shift 2
    start_bg "$name" "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$port" \
        --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" \
        --keys "$PKI/keys" "$@"
    KS_PID=$LAST_PID
    wait_port "$port" 15 || fail "key server $name did not start on port $port"
}

# key_dir DIR KEY...: DIR (made if needed) holding $PKI/keys/KEY.key and KEY.crt of each KEY,
# a key directory of the test's own for a key server.
key_dir() {
    local dir=$1 k
    shift
    mkdir -p "$dir"
    for k in "$@"; do
        cp "$PKI/keys/$k.key" "$PKI/keys/$k.crt" "$dir/"
    done
}

# kw_cli_as NAME PORT SUBCOMMAND [args...]: the CLI against 127.0.0.1:PORT with the identity
# $PKI/NAME.crt and NAME.key (edge, edge2, ...); kw_cli: with the edge identity.
kw_cli_as() {
    local id=$1 port=$2 sub=$3
    shift 3
    "$KW_BIN/keyward" "$sub" --server "127.0.0.1:$port" --cert "$PKI/$id.crt" \
        --key "$PKI/$id.key" --ca "$PKI/ca.crt" "$@"
}
kw_cli() {
    kw_cli_as edge "$@"
}

# openssl_conf_providers [INIT_LINE]: prints the start of an openssl.cnf that loads the keyward
# provider next to default, up to the `[keyward_sect]` line (the caller writes that section's
# lines). INIT_LINE replaces `openssl_conf = openssl_init` (Node reads `nodejs_conf`).
openssl_conf_providers() {
    cat <<CNF
${1:-openssl_conf = openssl_init}
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
keyward = keyward_sect
[default_sect]
activate = 1
[keyward_sect]
CNF
}

# write_openssl_conf FILE SERVERS [IDDIR] [INIT_LINE]: an openssl.cnf that loads the keyward
# provider next to default, with the edge identity IDDIR/edge.crt, edge.key and ca.crt (default
# $PKI). INIT_LINE: as for openssl_conf_providers.
write_openssl_conf() {
    local file=$1 servers=$2 id=${3:-$PKI}
    {
        openssl_conf_providers "${4:-}"
        cat <<CNF
module = $KW_PROVIDER
activate = 1
servers = $servers
client_cert = $id/edge.crt
client_key = $id/edge.key
ca = $id/ca.crt
timeout_ms = 5000
CNF
    } >"$file"
}

# ---- keyward-proxy helpers (added by the proxy tests) ----
# proxy_remote_ok: 0 when the key-server path can be tested (provider and key server built).
proxy_remote_ok() {
    [ -f "$KW_PROVIDER" ] && [ -x "$KW_BIN/keyward-keyserver" ]
}

# start_backend NAME PORT [kw_backend args...]: the tiny HTTP (or --echo) backend; sets BACKEND_PID.
start_backend() {
    local name=$1 port=$2
    shift 2
    start_bg "$name" "$KW_TESTS/kw_backend" --listen "127.0.0.1:$port" --name "$name" "$@"
    BACKEND_PID=$LAST_PID
    wait_port "$port" 10 || fail "backend $name did not start on port $port"
}

# start_proxy NAME PORT [keyward-proxy args...]: keyward-proxy on 127.0.0.1:PORT; sets PROXY_PID.
start_proxy() {
    local name=$1 port=$2
    shift 2
    start_bg "$name" "$KW_BIN/keyward-proxy" --listen "127.0.0.1:$port" "$@"
    PROXY_PID=$LAST_PID
    wait_port "$port" 20 || fail "keyward-proxy $name did not start on port $port"
}

# proxy_ks_args PORT...: the flags that point keyward-proxy at key servers with the edge identity.
proxy_ks_args() {
    local p
    for p in "$@"; do
        printf -- '--keyserver 127.0.0.1:%s ' "$p"
    done
    printf -- '--client-cert %s --client-key %s --ca %s --provider %s' \
        "$PKI/edge.crt" "$PKI/edge.key" "$PKI/ca.crt" "$KW_PROVIDER"
}

# proxy_site_keys: KEYARGS, the proxy's flags for its site (ecdsa-p256): the key on a key server
# started here (ks on port KS) when the key-server path can be tested, else the local PEM key.
proxy_site_keys() {
    if proxy_remote_ok; then
        KS=$(free_port)
        start_keyserver ks "$KS"
        # shellcheck disable=SC2207
        KEYARGS=(--cert "$PKI/certs/ecdsa-p256.crt" $(proxy_ks_args "$KS"))
    else
        KEYARGS=(--cert "$PKI/keys/ecdsa-p256.crt,$PKI/keys/ecdsa-p256.key")
    fi
}

# proxy_setup: the test PKI, the backend (kw_backend on BP) and the site's KEYARGS
# (proxy_site_keys), what most proxy tests start from.
proxy_setup() {
    make_pki
    BP=$(free_port)
    start_backend backend "$BP"
    proxy_site_keys
}

# proxy_remote_setup: the same start for a test of the key-server path only (it skips, exiting 0,
# where keyward.so is not built): the PKI and the backend; the test starts its own key server.
proxy_remote_setup() {
    make_pki
    proxy_remote_ok || { echo "skip: keyward.so not built"; exit 0; }
    BP=$(free_port)
    start_backend backend "$BP"
}

# ---- keyward provider helpers (added by the provider tests) ----
# kw_keyid CERT: the keyward key id of a certificate's key (SHA-256 of its SPKI DER), in hex.
kw_keyid() {
    openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -r | cut -d' ' -f1
}

# kw_provider_preload: what LD_PRELOAD must hold for an uninstrumented program (openssl, nginx,
# haproxy) to load keyward.so from a -DKW_SANITIZE=ON build; empty in normal builds.
kw_provider_preload() {
    if [ "${KW_SANITIZE:-OFF}" = ON ]; then
        printf '%s:%s' "$(gcc -print-file-name=libasan.so)" "$(gcc -print-file-name=libubsan.so)"
    fi
}

# provider_setup [keyward-keyserver args...]: the test PKI, a key server (ks on KS_PORT) and
# $KW_TMP/prov.cnf, an openssl.cnf that loads the keyward provider pointed at it; PRELOAD: what
# LD_PRELOAD needs for a program that loads the provider (the sanitizer runtimes, or nothing).
provider_setup() {
    make_pki
    KS_PORT=$(free_port)
    start_keyserver ks "$KS_PORT" "$@"
    write_openssl_conf "$KW_TMP/prov.cnf" "127.0.0.1:$KS_PORT"
    PRELOAD=$(kw_provider_preload)
}

# make_stubs KEY...: the key stub $KW_TMP/KEY.stub of each $PKI/certs/KEY.crt.
make_stubs() {
    local k
    for k in "$@"; do
        "$KW_BIN/keyward" stub --cert "$PKI/certs/$k.crt" --out "$KW_TMP/$k.stub" 2>/dev/null ||
            fail "keyward stub --cert $k.crt"
    done
}

# kw_https_get PORT [s_client args...]: one TLS connection to 127.0.0.1:PORT (verifying against
# the site CA) sending GET /; prints s_client's output. Never loads the keyward provider.
kw_https_get() {
    local port=$1
    shift
    printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' |
        OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$port" \
            -servername localhost -CAfile "$PKI/site-ca.crt" -verify_return_error -ign_eof "$@" 2>&1
}

# ---- fleet helpers (added by the fleet tests: chaining, authorisation, audit) ----
# make_peer_identity NAME: $PKI/NAME.crt/.key, a key server identity (CN=NAME, SAN localhost and
# 127.0.0.1) signed by $PKI/ca.crt and valid for server AND client auth, so a key server can use
# its own --cert/--key towards an --upstream (the default).
make_peer_identity() {
    local name=$1 ext
    ext=$(mktemp "$KW_TMP/ext.XXXXXX")
    printf '%s\n' "basicConstraints = critical,CA:FALSE" \
        "keyUsage = critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage = serverAuth,clientAuth" \
        "subjectAltName = DNS:localhost,IP:127.0.0.1" >"$ext"
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -subj "/O=keyward test/CN=$name" -keyout "$PKI/$name.key" -out "$KW_TMP/$name.csr" \
        2>/dev/null || fail "make_peer_identity $name: req"
    openssl x509 -req -in "$KW_TMP/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -CAserial "$KW_TMP/ca.srl" -days 30 -extfile "$ext" \
        -out "$PKI/$name.crt" 2>/dev/null || fail "make_peer_identity $name: sign"
    rm -f "$ext" "$KW_TMP/$name.csr"
}

# start_ks_as NAME PORT IDENTITY [args...]: keyward-keyserver on 127.0.0.1:PORT with the identity
# $PKI/IDENTITY.crt/.key and the test CA, and only the other args given (no --keys unless given);
# waits for its port, sets KS_PID.
start_ks_as() {
    local name=$1 port=$2 id=$3
    shift 3
    start_bg "$name" "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$port" \
        --cert "$PKI/$id.crt" --key "$PKI/$id.key" --ca "$PKI/ca.crt" "$@"
    KS_PID=$LAST_PID
    wait_port "$port" 15 || fail "key server $name did not start on port $port"
}

# kw_rawc PORT [kw_rawclient args...]: kw_rawclient with the edge identity against 127.0.0.1:PORT.
kw_rawc() {
    kw_rawc_as edge "$@"
}
# kw_rawc_as NAME PORT [kw_rawclient args...]: the same with the identity $PKI/NAME.crt and .key.
kw_rawc_as() {
    local id=$1 port=$2
    shift 2
    "$KW_TESTS/kw_rawclient" --server "127.0.0.1:$port" --cert "$PKI/$id.crt" \
        --key "$PKI/$id.key" --ca "$PKI/ca.crt" "$@"
}

# ---- master-secret mode helpers (added by the master-secret tests) ----
# write_openssl_conf_master FILE SERVERS: like write_openssl_conf, with master_secret_mode = yes
# and the property preference that makes libssl fetch keyward's TLS1-PRF (docs/master-secret.md).
write_openssl_conf_master() {
    local file=$1 servers=$2
    write_openssl_conf "$file.tmp" "$servers"
    sed 's/^providers = provider_sect$/providers = provider_sect\nalg_section = algorithm_sect/' \
        "$file.tmp" >"$file"
    rm -f "$file.tmp"
    printf '%s\n' "master_secret_mode = yes" "[algorithm_sect]" \
        "default_properties = ?keyward.prf=yes" >>"$file"
}

# kw_grep ARGS...: `grep -q` for the end of a pipeline. It reads all of its input, so the writer
# never gets SIGPIPE (with pipefail, `cmd | grep -q` fails when grep exits before cmd is done).
kw_grep() {
    grep "$@" >/dev/null
}

# start_session NAME PORT: one long-lived kw_session (edge identity) to 127.0.0.1:PORT, driven
# through FIFOs rather than a bash coproc (a coproc's NAME_PID variable vanishes as soon as the
# process is reaped, which made a fast failure look like "unbound variable"). Waits for its
# "connected LOCAL_PORT" line; sets SESS_PID, SESS_IN (fd to write commands), SESS_OUT (fd to read
# answers) and SESS_HELLO. Its stderr goes to $KW_TMP/NAME.log, which fail prints.
start_session() {
    local name=$1 port=$2
    mkfifo "$KW_TMP/$name.in" "$KW_TMP/$name.out"
    "$KW_TESTS/kw_session" --server "127.0.0.1:$port" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" <"$KW_TMP/$name.in" >"$KW_TMP/$name.out" \
        2>"$KW_TMP/$name.log" &
    SESS_PID=$!
    KW_PIDS+=("$SESS_PID")
    exec {SESS_IN}>"$KW_TMP/$name.in"
    exec {SESS_OUT}<"$KW_TMP/$name.out"
    read -r -t 10 SESS_HELLO <&"$SESS_OUT" || fail "kw_session $name did not connect"
    [[ $SESS_HELLO == connected* ]] || fail "kw_session $name: $SESS_HELLO"
}

# session_ask LINE: one command on the session of start_session, its answer in REPLY_LINE; fails
# when no answer comes within 10 s or the session's connection was closed.
session_ask() {
    echo "$1" >&"$SESS_IN"
    read -r -t 10 REPLY_LINE <&"$SESS_OUT" || fail "no answer on the session to: $1"
    [ "$REPLY_LINE" != closed ] || fail "the session's connection was closed"
}

# ks_log_count PATTERN: how many lines of the key server's log ($KW_TMP/ks.log) hold PATTERN.
ks_log_count() {
    grep -c -- "$1" "$KW_TMP/ks.log" || true
}

# ks_hup PATTERN: SIGHUP to $KS_PID, then waits (10 s at most) for one more PATTERN line in the
# key server's log.
ks_hup() {
    local n tries=200
    n=$(ks_log_count "$1")
    kill -HUP "$KS_PID"
    until [ "$(ks_log_count "$1")" -gt "$n" ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "no '$1' in the key server log after SIGHUP"
        sleep 0.05
    done
}

# expect_fail STATUS PATTERN CMD...: CMD exits with STATUS and says PATTERN on stderr; its output
# stays in $W/out and $W/err (W: the test's work folder).
expect_fail() {
    local want=$1 pattern=$2 rc=0
    shift 2
    "$@" >"$W/out" 2>"$W/err" || rc=$?
    [ "$rc" = "$want" ] || fail "$* exited $rc, not $want: $(cat "$W/err")"
    grep -q -- "$pattern" "$W/err" || fail "$*: stderr lacks '$pattern': $(cat "$W/err")"
}

# ---- master-secret server helpers (added by test_master_secret_servers.sh) ----
# kw_stop PID [SECONDS]: SIGTERM, then waits up to SECONDS (default 20) for PID to exit (SIGKILL
# after that, returning 124); returns the process's exit status otherwise. PID must be a child
# of this shell (start_bg).
kw_stop() {
    local pid=$1 tries=$(( ${2:-20} * 20 )) rc=0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -gt 0 ]; do
        sleep 0.05
        tries=$((tries - 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 124
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}

# kw_audit_count FILE PATTERN: how many lines of an audit log match the extended regex PATTERN
# (0 when the file does not exist).
kw_audit_count() {
    if [ -f "$1" ]; then
        grep -Ec "$2" "$1" || true
    else
        echo 0
    fi
}

# write_nginx_conf DIR WORKERS ERROR_LOG SERVER_BLOCKS [LEVEL] [daemon]: DIR/nginx.conf for
# Debian's nginx in the foreground (daemon off, env OPENSSL_CONF passed through, temporary paths
# under DIR/tmp, no access log), with SERVER_BLOCKS (text, e.g. from nginx_server) inside
# `http { }`. Started as root, the master drops its workers to www-data as Debian's nginx.conf does
# (the edge's credentials stay root-only; the scratch dir becomes traversable for the workers'
# temporary paths). Start it with `nginx -p DIR -c DIR/nginx.conf -e ERROR_LOG`; with `daemon`
# the file leaves `daemon` and `master_process` to the command line (`-g 'daemon on;
# master_process on;'`, as Debian's unit starts it).
write_nginx_conf() {
    local dir=$1 workers=$2 errlog=$3 servers=$4 level=${5:-info} user="" mode=""
    mkdir -p "$dir/tmp"
    if [ "$(id -u)" = 0 ]; then
        user="user www-data;"
        chmod 755 "$KW_TMP"
    fi
    [ "${6:-}" = daemon ] || mode="master_process on;
daemon off;"
    cat >"$dir/nginx.conf" <<CONF
worker_processes $workers;
$mode
$user
error_log $errlog $level;
pid $dir/nginx.pid;
env OPENSSL_CONF;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
$servers
}
CONF
}

# nginx_server PORT CERT KEY BODY [DIRECTIVES]: prints an nginx `server { }` block on
# 127.0.0.1:PORT (TLS 1.2 and 1.3, server_name localhost) with certificate CERT and key KEY (a key
# stub) that answers every request with BODY and a newline (nginx variables such as
# \$ssl_protocol are expanded by nginx); DIRECTIVES (lines) go before the location.
nginx_server() {
    cat <<CONF
    server {
        listen 127.0.0.1:$1 ssl;
        server_name localhost;
        ssl_certificate $2;
        ssl_certificate_key $3;
        ssl_protocols TLSv1.2 TLSv1.3;
${5:-}
        location / { return 200 "$4\n"; }
    }
CONF
}

# tls_session PORT TLSVER OUT [s_client args]: one `GET /` over TLS TLSVER (1_2 or 1_3) to the
# site on 127.0.0.1:PORT (SNI localhost, the site CA), s_client's output in OUT (a resumed session
# shows "Reused,", a full handshake "New,"); -sess_out/-sess_in FILE in the args keep or offer a
# session. Never fails: the caller greps OUT.
tls_session() {
    local port=$1 ver=$2 out=$3
    shift 3
    (printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.5) | timeout 10 openssl s_client \
        -connect "127.0.0.1:$port" -servername localhost -CAfile "$PKI/site-ca.crt" \
        "-tls$ver" "$@" >"$out" 2>&1 || true
}

# check_config_fails BINARY WHAT PATTERN ARGS...: `BINARY --check-config ARGS` must exit 1, say
# PATTERN and that the test failed (WHAT names the case in messages).
check_config_fails() {
    local bin=$1 what=$2 pat=$3 rc=0 out
    shift 3
    out=$("$bin" --check-config "$@" 2>&1) || rc=$?
    [ "$rc" = 1 ] || fail "--check-config with $what: exit $rc, not 1: $out"
    grep -q -- "$pat" <<<"$out" || fail "--check-config with $what does not say '$pat': $out"
    grep -q 'test failed' <<<"$out" || fail "--check-config with $what does not say it failed: $out"
    pass "--check-config with $what: exit 1, '$pat'"
}

# write_proxy_yaml FILE LISTEN BACKEND CERT KEYSERVER [LINES]: a keyward-proxy YAML file serving
# certificate CERT with the key server KEYSERVER (both HOST:PORT), the edge identity of $PKI and
# keyward.so; LINES (more YAML, one option a line) are appended.
write_proxy_yaml() {
    cat >"$1" <<YAML
listen: "$2"
backend: "$3"
certs: ["$4"]
keyservers: ["$5"]
client_cert: $PKI/edge.crt
client_key: $PKI/edge.key
ca: $PKI/ca.crt
provider: $KW_PROVIDER
${6:-}
YAML
}

# softhsm_token: a fresh SoftHSM2 token "keyward" (user PIN 246810, in $KW_TMP/hsm/pin) in its own
# token directory; sets MODULE (the SoftHSM2 PKCS#11 module), H ($KW_TMP/hsm) and exports
# SOFTHSM2_CONF.
softhsm_token() {
    local m
    MODULE=""
    for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
        /usr/lib64/softhsm/libsofthsm2.so; do
        [ -f "$m" ] && MODULE=$m && break
    done
    [ -n "$MODULE" ] || fail "SoftHSM2 is not installed (run scripts/install-deps.sh)"
    command -v pkcs11-tool >/dev/null ||
        fail "pkcs11-tool (opensc) is not installed (run scripts/install-deps.sh)"
    H=$KW_TMP/hsm
    mkdir -p "$H/tokens"
    export SOFTHSM2_CONF=$H/softhsm2.conf
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$H/tokens" >"$SOFTHSM2_CONF"
    softhsm2-util --init-token --free --label keyward --pin 246810 --so-pin 13579111 >/dev/null ||
        fail "softhsm2-util --init-token"
    printf '246810\n' >"$H/pin"
    chmod 600 "$H/pin"
}

# start_keyserver_token NAME PORT MODULE [extra args...]: starts keyward-keyserver with the test
# identity and softhsm_token's token (label keyward, $H/pin) through the PKCS#11 MODULE, no keys
# dir; waits for its port; sets KS_PID.
start_keyserver_token() {
    local name=$1 port=$2 module=$3
    shift 3
    start_bg "$name" "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$port" \
        --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" \
        --pkcs11-module "$module" --pkcs11-token keyward --pkcs11-pin-file "$H/pin" "$@"
    KS_PID=$LAST_PID
    wait_port "$port" 30 || fail "key server $name with the token did not start on port $port"
}

# wait_for_line FILE PATTERN WHAT [SECONDS]: waits (default 10 s) until FILE has a line matching
# the grep pattern PATTERN; fails with "WHAT" otherwise.
wait_for_line() {
    local file=$1 pattern=$2 what=$3 tries=$(( ${4:-10} * 20 ))
    until grep -q -- "$pattern" "$file" 2>/dev/null; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "$what"
        sleep 0.05
    done
}

# curl_expect WHAT PORT PATTERN [curl args...]: one HTTPS GET of https://localhost:PORT/ (site CA,
# 30 s at most, never the keyward provider); the reply must match the extended regex PATTERN.
curl_expect() {
    local what=$1 port=$2 pat=$3 out
    shift 3
    out=$(OPENSSL_CONF=/dev/null curl -sS --max-time 30 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$port:127.0.0.1" "$@" "https://localhost:$port/" 2>&1) ||
        fail "$what: curl: $out"
    grep -Eq -- "$pat" <<<"$out" || fail "$what: unexpected reply: $out"
    pass "$what (${out%%$'\n'*})"
}

# probe_under_rsa_flood PORT: the fairness measurement of test_keyserver_fairness and
# test_keyserver_loop_signs. With probe (KEY_ID OPCODE COUNT -> kw_abuse's latency line) and field
# defined by the test, EC_ID, RSA_ID and $KW_TMP/dgst set: ECDSA and RSA latency alone, then ECDSA
# while one connection keeps 256 RSA signatures in flight. Sets ec_alone, rsa_alone, ec_flood.
probe_under_rsa_flood() {
    ec_alone=$(probe "$EC_ID" 0x15 200) || fail "ECDSA probe alone"
    rsa_alone=$(probe "$RSA_ID" 0x05 100) || fail "RSA probe alone"
    kw_rawc "$1" --bench --connections 1 --inflight 256 --seconds 60 --op 0x05 \
        --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$KW_TMP/dgst" >"$KW_TMP/flood.out" 2>&1 &
    local flood=$!
    KW_PIDS+=("$flood")
    sleep 1.5
    ec_flood=$(probe "$EC_ID" 0x15 300) || fail "ECDSA probe under the flood"
    kill -0 "$flood" 2>/dev/null || fail "the flood ended before the probe did: $(cat "$KW_TMP/flood.out")"
    kill "$flood"
    wait "$flood" 2>/dev/null || true
    echo "alone: ECDSA $ec_alone; RSA $rsa_alone; under the flood: ECDSA $ec_flood"
}
