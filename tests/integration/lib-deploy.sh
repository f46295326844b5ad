#!/bin/bash
# Helpers for the test_deploy_*.sh tests, which run servers the way Debian runs them: a root master
# that loads certificates and key stubs through the keyward provider, then drops privileges (and
# usually forks); the edge's credentials root-only (0600 files in a 0700 directory). Each server is
# checked with curl, `openssl s_client` and `gnutls-cli` (an independent TLS stack) over TLS 1.3,
# TLS 1.2 ECDHE and TLS 1.2 RSA key exchange, and every handshake's key operation must appear in
# the key server's audit log. Source it instead of lib.sh: . "$(dirname "$0")/lib-deploy.sh".
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Daemonised servers are not children of the test: deploy_at_exit CMD... queues a command (e.g.
# stopping one by its pid file) that runs at exit, before lib.sh's cleanup.
DEPLOY_AT_EXIT=()
deploy_at_exit() {
    DEPLOY_AT_EXIT+=("$*")
}
deploy_cleanup() {
    local cmd
    for cmd in "${DEPLOY_AT_EXIT[@]}"; do
        eval "$cmd" >/dev/null 2>&1 || true
    done
    kw_cleanup
}
trap deploy_cleanup EXIT

# deploy_kill_pidfile FILE: SIGTERM to the pid in FILE, then up to 10 s for it to exit.
deploy_kill_pidfile() {
    local pid tries=200
    pid=$(cat "$1" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ "$tries" -gt 0 ]; do
        sleep 0.05
        tries=$((tries - 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# deploy_setup: the PKI, the key server (audit log $AUDIT), root-only edge credentials in $EDGE,
# the provider's openssl.cnf $PROV_CNF (readable, it holds no secret), and in $SITE (world
# readable, as /etc/ssl/certs would be) each site's certificate NAME.crt, key stub NAME.stub and
# HAProxy bundle NAME.pem for NAME in rsa2048 and ecdsa-p256. Sets RSA_ID and EC_ID (key ids).
# The array DEPLOY_KS_ARGS (may be unset) adds flags to the key server.
deploy_setup() {
    [ "$(id -u)" = 0 ] || fail "the deploy tests start servers as root that drop privileges"
    command -v gnutls-cli >/dev/null || fail "gnutls-cli is not installed (scripts/install-deps.sh)"
    # The scratch dir holds what workers may read (document roots, temp dirs); the PKI in it
    # stays 0700 (make-pki.sh runs with umask 077).
    chmod 755 "$KW_TMP"
    make_pki
    chmod 700 "$PKI"
    EDGE=$KW_TMP/edge-creds
    mkdir -m 700 "$EDGE"
    cp "$PKI/edge.crt" "$PKI/edge.key" "$PKI/ca.crt" "$EDGE/"
    chmod 600 "$EDGE"/*
    SITE=$KW_TMP/site
    mkdir -m 755 "$SITE"
    local k
    for k in rsa2048 ecdsa-p256; do
        cp "$PKI/certs/$k.crt" "$SITE/$k.crt"
        "$KW_BIN/keyward" stub --cert "$SITE/$k.crt" --out "$SITE/$k.stub" 2>/dev/null ||
            fail "keyward stub $k"
        cat "$SITE/$k.crt" "$SITE/$k.stub" >"$SITE/$k.pem"
    done
    chmod 644 "$SITE"/*
    RSA_ID=$(kw_keyid "$SITE/rsa2048.crt")
    EC_ID=$(kw_keyid "$SITE/ecdsa-p256.crt")
    AUDIT=$KW_TMP/audit.log
    KS_PORT=$(free_port)
    # shellcheck disable=SC2153
    start_keyserver ks "$KS_PORT" --audit-log "$AUDIT" "${DEPLOY_KS_ARGS[@]}"
    mkdir -m 755 "$KW_TMP/etc"
    PROV_CNF=$KW_TMP/etc/openssl.cnf
    deploy_openssl_conf "$PROV_CNF"
    chmod 644 "$PROV_CNF"
    export AUDIT PROV_CNF EDGE SITE RSA_ID EC_ID KS_PORT
}

# deploy_openssl_conf FILE [INIT_LINE]: the operator's openssl.cnf for the provider, with the
# root-only edge credentials. INIT_LINE replaces `openssl_conf = openssl_init` (Node reads
# `nodejs_conf` unless started with --openssl-shared-config).
deploy_openssl_conf() {
    write_openssl_conf "$1" "127.0.0.1:$KS_PORT" "$EDGE" "${2:-}"
}

# deploy_drops_privileges WHAT PID USER: PID (or, when it is a master, one of its children) runs
# as USER.
deploy_drops_privileges() {
    local what=$1 pid=$2 user=$3 p
    for p in "$pid" $(pgrep -P "$pid"); do
        if [ "$(ps -o user= -p "$p" | tr -d ' ')" = "$user" ]; then
            pass "$what: pid $p runs as $user"
            return 0
        fi
    done
    ps -o pid,ppid,user,args --ppid "$pid" -p "$pid" >&2 || true
    fail "$what: no process runs as $user (pid $pid and its children)"
}

# deploy_pid_of FILE [SECONDS]: waits for a pid file and prints its pid.
deploy_pid_of() {
    local file=$1 tries=$(( ${2:-15} * 20 ))
    until [ -s "$file" ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "no pid file $file"
        sleep 0.05
    done
    head -n 1 "$file" | tr -d ' \n'
}

# deploy_nginx DIR SERVER_BLOCKS PORT...: Debian's nginx as its unit runs it, with the key stubs
# through the provider ($PROV_CNF): DIR/nginx.conf (write_nginx_conf: 2 workers, `user
# www-data;`), `nginx -t -q -g 'daemon on; master_process on;'`, then the same without -t; stopped
# at exit. Waits until it listens on every PORT and checks a worker runs as www-data. Sets MASTER.
deploy_nginx() {
    local dir=$1 servers=$2 port wait=15
    shift 2
    write_nginx_conf "$dir" 2 "$KW_TMP/nginx-error.log" "$servers" info daemon
    deploy_at_exit deploy_kill_pidfile "$dir/nginx.pid"
    local run=(env OPENSSL_CONF="$PROV_CNF" LD_PRELOAD="$(kw_provider_preload)" nginx -p "$dir"
        -c "$dir/nginx.conf" -e "$KW_TMP/nginx-error.log" -g 'daemon on; master_process on;')
    "${run[@]}" -t -q >"$KW_TMP/nginx-start.log" 2>&1 ||
        fail "nginx -t refused the configuration: $(cat "$KW_TMP/nginx-start.log")"
    "${run[@]}" >>"$KW_TMP/nginx-start.log" 2>&1 ||
        fail "nginx did not start: $(cat "$KW_TMP/nginx-start.log")"
    MASTER=$(deploy_pid_of "$dir/nginx.pid")
    for port in "$@"; do
        wait_port "$port" "$wait" || fail "nginx does not listen on $port"
        wait=5
    done
    deploy_drops_privileges "nginx worker" "$MASTER" www-data
}

# The expected key operation of a handshake, as the audit log names it (docs/fleet.md).
deploy_op_regex() { # key mode
    case "$1:$2" in
    rsa2048:rsakx) echo 'tls-rsa-decrypt|rsa-decrypt|tls12-master-secret' ;;
    rsa2048:*) echo 'rsa-(pss|pkcs1)-sha(256|384|512)' ;;
    ecdsa-p256:*) echo 'ecdsa-sha(256|384|512)' ;;
    esac
}

deploy_audit_lines() {
    if [ -f "$AUDIT" ]; then wc -l <"$AUDIT"; else echo 0; fi
}

# deploy_audit_expect WHAT KEY MODE SINCE: within 5 s, a line after line SINCE of the audit log
# shows KEY's operation for MODE with result ok.
deploy_audit_expect() {
    local what=$1 key=$2 mode=$3 since=$4 id op tries=100 n
    if [ "$key" = rsa2048 ]; then id=$RSA_ID; else id=$EC_ID; fi
    op=$(deploy_op_regex "$key" "$mode")
    while :; do
        n=$(tail -n "+$((since + 1))" "$AUDIT" 2>/dev/null | grep -F "\"key\":\"$id\"" |
            grep -E "\"opcode\":\"($op)\"" | grep -c '"result":"ok"' || true)
        [ "$n" -ge 1 ] && break
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "$what: no audit line for $key ($op) after line $since of $AUDIT"
        sleep 0.05
    done
}

# Client settings per key and mode: curl/openssl cipher (TLS 1.2) and a GnuTLS priority string.
deploy_cipher() { # key mode
    case "$1:$2" in
    *:rsakx) echo AES128-GCM-SHA256 ;;
    rsa2048:ecdhe) echo ECDHE-RSA-AES128-GCM-SHA256 ;;
    ecdsa-p256:ecdhe) echo ECDHE-ECDSA-AES128-GCM-SHA256 ;;
    esac
}
deploy_gnutls_prio() { # mode
    case "$1" in
    tls13) echo 'NORMAL:-VERS-ALL:+VERS-TLS1.3' ;;
    ecdhe) echo 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA:+ECDHE-ECDSA' ;;
    rsakx) echo 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA' ;;
    esac
}

# deploy_curl PROTO PORT KEY MODE REPLY: one request; the negotiated version/cipher and the reply
# (extended regex) are checked. PROTO https or smtp (STARTTLS, NOOP).
deploy_curl() {
    local proto=$1 port=$2 key=$3 mode=$4 reply=$5 out args=() want
    if [ "$mode" = tls13 ]; then
        args=(--tlsv1.3)
        want='SSL connection using TLSv1.3'
    else
        args=(--tlsv1.2 --tls-max 1.2 --ciphers "$(deploy_cipher "$key" "$mode")")
        want="SSL connection using TLSv1.2 / $(deploy_cipher "$key" "$mode")"
    fi
    if [ "$proto" = smtp ]; then
        args+=(--ssl-reqd -X NOOP "smtp://localhost:$port")
    else
        args+=("https://localhost:$port/")
    fi
    out=$(OPENSSL_CONF=/dev/null curl -sS -v --max-time 20 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$port:127.0.0.1" "${args[@]}" 2>&1) || fail "curl $key $mode: $out"
    grep -qF -- "$want" <<<"$out" || fail "curl $key $mode: not '$want': $out"
    grep -Eq -- "$reply" <<<"$out" || fail "curl $key $mode: no reply /$reply/: $out"
}

# deploy_s_client PROTO PORT KEY MODE REPLY: the same with openssl s_client (-starttls smtp).
deploy_s_client() {
    local proto=$1 port=$2 key=$3 mode=$4 reply=$5 out args=() req want
    if [ "$mode" = tls13 ]; then
        args=(-tls1_3)
        want='Protocol  : TLSv1.3'
    else
        args=(-tls1_2 -cipher "$(deploy_cipher "$key" "$mode")")
        want="Cipher    : $(deploy_cipher "$key" "$mode")"
    fi
    if [ "$proto" = smtp ]; then
        args+=(-starttls smtp)
        req='NOOP\r\nQUIT\r\n'
    else
        req='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'
    fi
    # Its exit status is not checked: servers that close without close_notify (Python) make
    # s_client report "unexpected eof"; the handshake and the reply are checked instead.
    # shellcheck disable=SC2059
    out=$(printf "$req" | OPENSSL_CONF=/dev/null timeout 20 openssl s_client \
        -connect "127.0.0.1:$port" -servername localhost -CAfile "$PKI/site-ca.crt" \
        -verify_return_error -ign_eof "${args[@]}" 2>&1) || true
    grep -qF -- "$want" <<<"$out" || fail "s_client $key $mode: not '$want': $out"
    grep -qF 'Verify return code: 0 (ok)' <<<"$out" || fail "s_client $key $mode: verify: $out"
    grep -Eq -- "$reply" <<<"$out" || fail "s_client $key $mode: no reply /$reply/: $out"
}

# deploy_gnutls PROTO PORT KEY MODE REPLY: the same with GnuTLS's gnutls-cli (--starttls-proto).
deploy_gnutls() {
    local proto=$1 port=$2 key=$3 mode=$4 reply=$5 out args=() req want
    case "$mode" in
    tls13) want='(TLS1.3-' ;;
    ecdhe) want='(TLS1.2-X.509)-(ECDHE-' ;;
    rsakx) want='(TLS1.2-X.509)-(RSA)' ;;
    esac
    if [ "$proto" = smtp ]; then
        args=(--starttls-proto smtp)
        req='NOOP\r\n'
    else
        req='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'
    fi
    # gnutls-cli closes the connection when its stdin ends: stdin (a FIFO) stays open until the
    # reply is in (or 20 s, or gnutls-cli exits).
    local fifo=$KW_TMP/gnutls.in log=$KW_TMP/gnutls.out gpid w tries=400
    rm -f "$fifo"
    mkfifo "$fifo"
    timeout 20 gnutls-cli --x509cafile "$PKI/site-ca.crt" --priority "$(deploy_gnutls_prio "$mode")" \
        -p "$port" "${args[@]}" localhost <"$fifo" >"$log" 2>&1 &
    gpid=$!
    exec {w}>"$fifo"
    # shellcheck disable=SC2059
    printf "$req" >&"$w"
    while kill -0 "$gpid" 2>/dev/null && ! grep -Eq -- "$reply" "$log" && [ "$tries" -gt 0 ]; do
        sleep 0.05
        tries=$((tries - 1))
    done
    exec {w}>&-
    # (exit status unchecked, as for s_client: a close without close_notify is "fatal" to it)
    wait "$gpid" 2>/dev/null || true
    out=$(cat "$log")
    rm -f "$fifo" "$log"
    grep -qF -- '- Handshake was completed' <<<"$out" || fail "gnutls-cli $key $mode: $out"
    grep -qF -- "- Description: $want" <<<"$out" || fail "gnutls-cli $key $mode: not $want: $out"
    grep -Eq -- "$reply" <<<"$out" || fail "gnutls-cli $key $mode: no reply /$reply/: $out"
}

# deploy_audit_count SINCE KEY OPREGEX: audit lines after line SINCE with KEY's id, an opcode
# matching OPREGEX and result ok.
deploy_audit_count() {
    local since=$1 id=$RSA_ID
    [ "$2" = rsa2048 ] || id=$EC_ID
    tail -n "+$((since + 1))" "$AUDIT" 2>/dev/null | grep -F "\"key\":\"$id\"" |
        grep -E "\"opcode\":\"($3)\"" | grep -c '"result":"ok"' || true
}

# deploy_matrix WHAT PROTO RSA_PORT EC_PORT REPLY: every client x key x mode (RSA key exchange
# for the RSA site only): 15 handshakes. Then the audit log (written every 500 ms) must show
# exactly one operation per handshake: 6 RSA signatures, 3 RSA key-exchange decryptions and 6
# ECDSA signatures, all ok.
deploy_matrix() {
    local what=$1 proto=$2 rsa_port=$3 ec_port=$4 reply=$5 key port mode client since modes
    local want_sig want_dec want_ec got_sig got_dec got_ec tries=100
    since=$(deploy_audit_lines)
    for key in rsa2048 ecdsa-p256; do
        if [ "$key" = rsa2048 ]; then
            port=$rsa_port
            modes="tls13 ecdhe rsakx"
        else
            port=$ec_port
            modes="tls13 ecdhe"
        fi
        for mode in $modes; do
            for client in curl s_client gnutls; do
                "deploy_$client" "$proto" "$port" "$key" "$mode" "$reply"
                pass "$what: $client $key $mode"
            done
        done
    done
    want_sig=6 want_dec=3 want_ec=6
    while :; do
        got_sig=$(deploy_audit_count "$since" rsa2048 "$(deploy_op_regex rsa2048 tls13)")
        got_dec=$(deploy_audit_count "$since" rsa2048 "$(deploy_op_regex rsa2048 rsakx)")
        got_ec=$(deploy_audit_count "$since" ecdsa-p256 "$(deploy_op_regex ecdsa-p256 tls13)")
        [ "$got_sig $got_dec $got_ec" = "$want_sig $want_dec $want_ec" ] && break
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "$what: audit log after line $since: $got_sig RSA signatures," \
            "$got_dec RSA decryptions, $got_ec ECDSA signatures (want $want_sig, $want_dec, $want_ec)"
        sleep 0.05
    done
    pass "$what: the audit log shows each operation ($got_sig RSA signatures, $got_dec RSA key-exchange decryptions, $got_ec ECDSA signatures)"
}

# deploy_short_matrix WHAT RSA_PORT EC_PORT REPLY: three handshakes where deploy_matrix does 15,
# for a second way of configuring the same server: curl to the RSA site over TLS 1.3 and RSA key
# exchange, gnutls-cli to the ECDSA site over TLS 1.2 ECDHE, each one's key operation audited.
deploy_short_matrix() {
    local what=$1 rsa_port=$2 ec_port=$3 reply=$4 mode since
    for mode in tls13 rsakx; do
        since=$(deploy_audit_lines)
        deploy_curl https "$rsa_port" rsa2048 "$mode" "$reply"
        deploy_audit_expect "$what" rsa2048 "$mode" "$since"
    done
    since=$(deploy_audit_lines)
    deploy_gnutls https "$ec_port" ecdsa-p256 ecdhe "$reply"
    deploy_audit_expect "$what" ecdsa-p256 ecdhe "$since"
    pass "$what: RSA TLS 1.3 and RSA key exchange, ECDSA ECDHE"
}
