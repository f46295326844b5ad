#!/bin/bash
# Master-secret mode (issue 8, docs/master-secret.md) with real TLS servers other than s_server
# and with key stores other than a PEM directory:
#  1. unmodified Debian nginx and 2. HAProxy, each loading an RSA-2048 key stub through the
#     keyward provider with master_secret_mode = yes, serve TLS 1.2 RSA key exchange with and
#     without extended master secret (SHA-256 and SHA-384 PRF) to openssl s_client and curl;
#     ECDHE-RSA and TLS 1.3 still work (sign path);
#  3. a chain edge -> key server A (no keys, --upstream B) -> key server B (keys): s_server
#     completes master-secret handshakes, B computes the master secret (its audit names A);
#  4. an RSA key generated on a SoftHSM2 token serves master-secret handshakes.
# (s_server -async is covered by test_master_secret.sh; here it would only add s_server -www's
# 1 s sleep per handshake.)
# After each part the key servers are stopped (flushing their audit logs) and their audit logs
# must hold exactly the expected tls12-master-secret and sign lines, all "ok", and no decryption
# of any kind (rsa-decrypt 0x01, rsa-decrypt-raw 0x08, tls-rsa-decrypt 0xA0): the pre-master
# secret never left the key server.
. "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || fail "nginx is not installed (scripts/install-deps.sh)"
command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/install-deps.sh)"
[ -f "$KW_PROVIDER" ] || fail "provider $KW_PROVIDER not built"
make_pki
make_peer_identity ks-a
PRELOAD=$(kw_provider_preload)
"$KW_BIN/keyward" stub --cert "$PKI/certs/rsa2048.crt" --out "$KW_TMP/rsa.stub" 2>/dev/null ||
    fail "keyward stub"
# OpenSSL 3.0's s_client has no flag to turn extended master secret off: a client config does.
printf '%s\n' "openssl_conf = init" "[init]" "ssl_conf = ssl_sect" "[ssl_sect]" \
    "system_default = sysdef" "[sysdef]" "Options = -ExtendedMasterSecret" >"$KW_TMP/noems.cnf"
RSA_CIPHERS=ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384

# tls_expect WHAT PORT CLIENT_CONF PATTERNS [s_client args...]: one GET / through s_client;
# every ';'-separated extended regex in PATTERNS must appear in its output.
tls_expect() {
    local what=$1 port=$2 conf=$3 pats=$4 out p pats_a
    shift 4
    out=$(printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' |
        OPENSSL_CONF=$conf timeout 30 openssl s_client -connect "127.0.0.1:$port" \
            -servername localhost -CAfile "$PKI/site-ca.crt" -verify_return_error -ign_eof \
            "$@" 2>&1) || true
    echo "$out" >"$KW_TMP/last-client.log"
    IFS=';' read -r -a pats_a <<<"Verify return code: 0 \\(ok\\);$pats"
    for p in "${pats_a[@]}"; do
        grep -Eq -- "$p" <<<"$out" || fail "$what: no /$p/ in the s_client output"
    done
    pass "$what"
}

# rsa_kx_set NAME PORT BODY: the master-secret handshakes every part runs (4: EMS and no EMS with
# the SHA-256 PRF, no EMS with the SHA-384 PRF, curl) against a server whose reply matches BODY.
rsa_kx_set() {
    local name=$1 port=$2 body=$3
    tls_expect "$name: TLS 1.2 RSA key exchange, extended master secret" "$port" /dev/null \
        "Cipher is AES128-GCM-SHA256;Extended master secret: yes;$body" -tls1_2 \
        -cipher AES128-GCM-SHA256
    tls_expect "$name: TLS 1.2 RSA key exchange, no extended master secret" "$port" \
        "$KW_TMP/noems.cnf" "Cipher is AES128-GCM-SHA256;Extended master secret: no;$body" \
        -tls1_2 -cipher AES128-GCM-SHA256
    tls_expect "$name: TLS 1.2 RSA key exchange, SHA-384 PRF, no EMS" "$port" \
        "$KW_TMP/noems.cnf" "Cipher is AES256-GCM-SHA384;Extended master secret: no;$body" \
        -tls1_2 -cipher AES256-GCM-SHA384
    curl_expect "$name: curl, TLS 1.2 RSA key exchange" "$port" "$body" --tls-max 1.2 \
        --ciphers AES128-GCM-SHA256
}

# audit_expect NAME FILE MS SIGNS EDGE CERT: the audit log of a stopped key server holds exactly
# MS tls12-master-secret lines for CERT's key and SIGNS RSA signature lines, all "ok" and from
# edge EDGE, and nothing else but the provider's list-keys (so no rsa-decrypt, rsa-decrypt-raw or
# tls-rsa-decrypt).
audit_expect() {
    local name=$1 file=$2 ms=$3 signs=$4 edge=$5 key n_ms n_sign n_list n_all n_ok n_edge n_dec
    key=$(kw_keyid "$6")
    n_ms=$(kw_audit_count "$file" "\"key\":\"$key\",\"opcode\":\"tls12-master-secret\"")
    n_sign=$(kw_audit_count "$file" '"opcode":"rsa-(pss|pkcs1)-sha(256|384|512)"')
    n_list=$(kw_audit_count "$file" '"opcode":"list-keys"')
    n_dec=$(kw_audit_count "$file" '"opcode":"[a-z-]*decrypt')
    n_all=$(kw_audit_count "$file" '.')
    n_ok=$(kw_audit_count "$file" '"result":"ok"')
    n_edge=$(kw_audit_count "$file" "\"edge\":\"$edge\"")
    [ "$n_dec" -eq 0 ] || fail "$name: $n_dec decryption requests in the audit log"
    [ "$n_ms" -eq "$ms" ] || fail "$name: $n_ms tls12-master-secret audit lines, expected $ms"
    [ "$n_sign" -eq "$signs" ] || fail "$name: $n_sign sign audit lines, expected $signs"
    [ "$n_all" -eq $((ms + signs + n_list)) ] ||
        fail "$name: $n_all audit lines, expected $ms + $signs (+ $n_list list-keys)"
    [ "$n_ok" -eq "$n_all" ] || fail "$name: only $n_ok of $n_all audit lines are ok"
    [ "$n_edge" -eq "$n_all" ] || fail "$name: only $n_edge of $n_all audit lines from '$edge'"
    pass "$name audit: $ms tls12-master-secret + $signs sign, all ok from '$edge', no decryption"
}

stop_ks() { # stop_ks NAME PID: the key server must exit 0 on SIGTERM (and flush its audit log)
    local rc=0
    kw_stop "$2" 30 || rc=$?
    [ "$rc" = 0 ] || fail "key server $1 exited with $rc after SIGTERM"
}

# check_web_server NAME PID PORT KS_PID AUDIT WHAT: a web server answering "hello NAME <protocol>
# <cipher>" in master-secret mode: the four RSA key exchange handshakes, ECDHE-RSA and TLS 1.3 on
# the sign path; then it and its key server are stopped and the audit must hold 4 master secrets
# and 2 signatures, nothing else.
check_web_server() {
    local name=$1 pid=$2 port=$3 ks=$4 audit=$5 what=$6
    wait_port "$port" 30 || fail "$name did not start"
    pass "$name started with $what in master-secret mode"
    rsa_kx_set "$name" "$port" "hello $name TLSv1.2 AES(128|256)-GCM-SHA(256|384)"
    curl_expect "$name: TLS 1.2 ECDHE-RSA (sign path)" "$port" \
        "hello $name TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256" --tls-max 1.2 \
        --ciphers ECDHE-RSA-AES128-GCM-SHA256
    curl_expect "$name: TLS 1.3 (sign path)" "$port" "hello $name TLSv1.3" --tlsv1.3
    kw_stop "$pid" 30 || true
    stop_ks "$name" "$ks"
    audit_expect "$name" "$audit" 4 2 edge "$PKI/certs/rsa2048.crt"
}

# check_s_server TAG NAME CNF CERT STUB: openssl s_server -www (log ss-TAG.log) with CERT and its
# key stub STUB through the provider configured in CNF: the master-secret handshakes and a TLS 1.2
# ECDHE-RSA one (the sign path); then it is stopped.
check_s_server() {
    local name=$2 port
    port=$(free_port)
    start_bg "ss-$1" env OPENSSL_CONF="$3" LD_PRELOAD="$PRELOAD" openssl s_server \
        -accept "127.0.0.1:$port" -cert "$4" -key "$5" -www -quiet
    wait_port "$port" 30 || fail "s_server ($name) did not start"
    rsa_kx_set "$name" "$port" "HTTP/1.0 200 ok|<HTML>"
    tls_expect "$name: TLS 1.2 ECDHE-RSA (sign path)" "$port" /dev/null \
        "Cipher is ECDHE-RSA-AES128-GCM-SHA256;HTTP/1.0 200 ok" -tls1_2 \
        -cipher ECDHE-RSA-AES128-GCM-SHA256
    kw_stop "$LAST_PID" 30 || true
}

# ---- 1. nginx ---------------------------------------------------------------------------------
AUDIT_N=$KW_TMP/audit-nginx.jsonl
KS_PORT=$(free_port)
start_keyserver ks-nginx "$KS_PORT" --audit-log "$AUDIT_N"
KS_N=$KS_PID
write_openssl_conf_master "$KW_TMP/ms-nginx.cnf" "127.0.0.1:$KS_PORT"
NGX=$KW_TMP/nginx
NGX_PORT=$(free_port)
write_nginx_conf "$NGX" 1 "$KW_TMP/nginx-error.log" "$(nginx_server "$NGX_PORT" \
    "$PKI/certs/rsa2048.crt" "$KW_TMP/rsa.stub" "hello nginx \$ssl_protocol \$ssl_cipher" \
    "        ssl_ciphers $RSA_CIPHERS;
        ssl_session_cache off;
        ssl_session_tickets off;")"
start_bg nginx env OPENSSL_CONF="$KW_TMP/ms-nginx.cnf" LD_PRELOAD="$PRELOAD" \
    nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$KW_TMP/nginx-error.log"
check_web_server nginx "$LAST_PID" "$NGX_PORT" "$KS_N" "$AUDIT_N" "a key stub"

# ---- 2. HAProxy -------------------------------------------------------------------------------
AUDIT_H=$KW_TMP/audit-haproxy.jsonl
KS_PORT=$(free_port)
start_keyserver ks-haproxy "$KS_PORT" --audit-log "$AUDIT_H"
KS_H=$KS_PID
write_openssl_conf_master "$KW_TMP/ms-haproxy.cnf" "127.0.0.1:$KS_PORT"
cat "$PKI/certs/rsa2048.crt" "$KW_TMP/rsa.stub" >"$KW_TMP/rsa2048.pem"
HA_PORT=$(free_port)
cat >"$KW_TMP/haproxy.cfg" <<CFG
global
    maxconn 100
defaults
    mode http
    timeout connect 10s
    timeout client 30s
    timeout server 30s
frontend rsa
    bind 127.0.0.1:$HA_PORT ssl crt $KW_TMP/rsa2048.pem ssl-min-ver TLSv1.2 no-tls-tickets ciphers $RSA_CIPHERS
    http-request return status 200 content-type text/plain lf-string "hello haproxy %[ssl_fc_protocol] %[ssl_fc_cipher]\n"
CFG
# Foreground (-db) so start_bg owns the pid and its log: this test is about master-secret mode;
# HAProxy as Debian runs it (-Ws, user haproxy, no insecure-fork-wanted) is test_deploy_haproxy.sh.
start_bg haproxy env OPENSSL_CONF="$KW_TMP/ms-haproxy.cnf" LD_PRELOAD="$PRELOAD" \
    haproxy -db -f "$KW_TMP/haproxy.cfg" # foreground on purpose: see the comment above
check_web_server haproxy "$LAST_PID" "$HA_PORT" "$KS_H" "$AUDIT_H" "a certificate + key stub PEM"

# ---- 3. chain: edge -> A (no keys) -> B (keys) ------------------------------------------------
AUDIT_A=$KW_TMP/audit-a.jsonl
AUDIT_B=$KW_TMP/audit-b.jsonl
PORT_B=$(free_port)
PORT_A=$(free_port)
start_ks_as ks-b "$PORT_B" keyserver --keys "$PKI/keys" --audit-log "$AUDIT_B"
KS_B=$KS_PID
start_ks_as ks-a "$PORT_A" ks-a --upstream "127.0.0.1:$PORT_B" --audit-log "$AUDIT_A"
KS_A=$KS_PID
write_openssl_conf_master "$KW_TMP/ms-chain.cnf" "127.0.0.1:$PORT_A"
# The stub's load-time check (0xA3, list keys) passes through A: A adds B's keys to its list.
check_s_server chain "chain A->B" "$KW_TMP/ms-chain.cnf" "$PKI/certs/rsa2048.crt" \
    "$KW_TMP/rsa.stub"
stop_ks A "$KS_A"
stop_ks B "$KS_B"
audit_expect "chain: A (forwarded)" "$AUDIT_A" 4 1 edge "$PKI/certs/rsa2048.crt"
audit_expect "chain: B (computed the master secrets)" "$AUDIT_B" 4 1 ks-a "$PKI/certs/rsa2048.crt"

# ---- 4. PKCS#11: an RSA key generated on a SoftHSM2 token -------------------------------------
softhsm_token
pkcs11-tool --module "$MODULE" --token-label keyward --login --pin 246810 --keypairgen \
    --key-type rsa:2048 --id 01 --label site-rsa >/dev/null 2>&1 || fail "RSA keygen on the token"
pkcs11-tool --module "$MODULE" --token-label keyward --read-object --type pubkey --id 01 \
    -o "$H/pub.raw" >/dev/null 2>&1 || fail "export the token's public key"
openssl pkey -pubin -in "$H/pub.raw" -out "$H/pub.pem" 2>/dev/null ||
    openssl pkey -pubin -inform DER -in "$H/pub.raw" -out "$H/pub.pem" ||
    fail "the token's public key is not readable"
printf '%s\n' "[site]" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost" >"$H/ext.cnf"
openssl x509 -new -subj "/O=keyward test/CN=hsm.example" -force_pubkey "$H/pub.pem" \
    -CA "$PKI/site-ca.crt" -CAkey "$PKI/site-ca.key" -days 30 -extfile "$H/ext.cnf" \
    -extensions site -out "$H/rsa.crt" 2>/dev/null || fail "certificate for the token's key"
"$KW_BIN/keyward" stub --cert "$H/rsa.crt" --out "$H/rsa.stub" 2>/dev/null || fail "stub (token)"
AUDIT_P=$KW_TMP/audit-pkcs11.jsonl
KS_PORT=$(free_port)
start_keyserver_token ks-pkcs11 "$KS_PORT" "$MODULE" --audit-log "$AUDIT_P"
KS_P=$KS_PID
kw_grep "pkcs11 token 'keyward' .*: 1 usable key(s)" "$KW_TMP/ks-pkcs11.log" ||
    fail "the key server does not serve the token's key"
write_openssl_conf_master "$KW_TMP/ms-pkcs11.cnf" "127.0.0.1:$KS_PORT"
check_s_server pkcs11 "PKCS#11 token key" "$KW_TMP/ms-pkcs11.cnf" "$H/rsa.crt" "$H/rsa.stub"
stop_ks pkcs11 "$KS_P"
audit_expect "PKCS#11" "$AUDIT_P" 4 1 edge "$H/rsa.crt"
