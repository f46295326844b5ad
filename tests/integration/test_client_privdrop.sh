#!/bin/bash
# Edges as Debian runs them (DESIGN.md §6, issue 13): credentials root-only (0600 in a 0700
# directory), set up as root, then a forked worker drops to nobody and signs. Through the
# libkeyward client and through the provider (configured in the parent: load_check off, so the
# client is first made in the worker, and auto, so it is made in the parent), and with
# RLIMIT_NPROC 0 in the worker (HAProxy's workers may not create threads), also with a dead key
# server first in the list (fail-over done by the blocking caller itself). Then what a server
# misconfigured to read its credentials as the worker user is told: which file, and why.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (the test drops privileges to nobody)"
    exit 0
fi
make_pki
PORT=$(free_port)
DEAD=$(free_port)
start_keyserver ks "$PORT"

CRED=$KW_TMP/cred
mkdir -m 700 "$CRED"
cp "$PKI/edge.crt" "$PKI/edge.key" "$PKI/ca.crt" "$CRED/"
chmod 600 "$CRED"/*
"$KW_BIN/keyward" stub --cert "$PKI/certs/ecdsa-p256.crt" --out "$KW_TMP/ec.stub" 2>/dev/null ||
    fail "keyward stub"

privdrop() {
    "$KW_TESTS/kw_privdrop" --cert "$CRED/edge.crt" --key "$CRED/edge.key" --ca "$CRED/ca.crt" \
        --key-cert "$PKI/certs/ecdsa-p256.crt" "$@"
}

# expect_ok NAME ARGS...: kw_privdrop must succeed.
expect_ok() {
    local name=$1
    shift
    if ! privdrop "$@" >"$KW_TMP/$name.out" 2>&1; then
        fail "$name: $(cat "$KW_TMP/$name.out")"
    fi
    sed 's/^/  /' "$KW_TMP/$name.out"
}

# --- the libkeyward client
expect_ok client --server "127.0.0.1:$PORT"
pass "client made as root; forked child as nobody signs (files unreadable there)"
expect_ok client-used --server "127.0.0.1:$PORT" --use-before-fork
pass "client used as root, then a child as nobody signs"

# --- the provider, configured in the parent as root
conf() { # file load_check
    write_openssl_conf "$1" "127.0.0.1:$PORT"
    sed -i -e "s|^client_cert = .*|client_cert = $CRED/edge.crt|" \
        -e "s|^client_key = .*|client_key = $CRED/edge.key|" -e "s|^ca = .*|ca = $CRED/ca.crt|" \
        -e "s|^timeout_ms = .*|timeout_ms = 3000\nload_check = $2|" "$1"
}
conf "$KW_TMP/off.cnf" off
conf "$KW_TMP/auto.cnf" auto
OPENSSL_CONF=$KW_TMP/off.cnf expect_ok prov-off --server "127.0.0.1:$PORT" \
    --provider "$KW_TMP/ec.stub"
pass "provider, load_check = off: the first key use is in the child as nobody"
OPENSSL_CONF=$KW_TMP/auto.cnf expect_ok prov-auto --server "127.0.0.1:$PORT" \
    --provider "$KW_TMP/ec.stub"
pass "provider, load_check = auto: client made by the parent, used by the child as nobody"

# --- workers that may not create threads (RLIMIT_NPROC 0, as HAProxy's)
expect_ok client-nproc0 --server "127.0.0.1:$PORT" --nproc0
pass "child as nobody with RLIMIT_NPROC 0 (no threads) signs, blocking"
expect_ok client-failover --server "127.0.0.1:$DEAD,127.0.0.1:$PORT" --nproc0 --requests 20
pass "no threads, a dead key server listed first: the blocking caller fails over itself"
# idle connections are not pinged without the thread: the key server closes them (idle timeout),
# and the next request reconnects at once, counting no failure
IDLE_PORT=$(free_port)
start_keyserver ks-idle "$IDLE_PORT" --idle-timeout-ms 700
expect_ok client-idle --server "127.0.0.1:$IDLE_PORT" --nproc0 --requests 4 --pause-ms 1500
grep -q "^stats: 127.0.0.1:$IDLE_PORT up 1 completed 4 failures 0" "$KW_TMP/client-idle.out" ||
    fail "an idle connection closed by the key server counted as a failure"
pass "no threads: a connection the key server closed while idle is reopened, not a failure"
OPENSSL_CONF=$KW_TMP/off.cnf expect_ok prov-nproc0 --server "127.0.0.1:$PORT" \
    --provider "$KW_TMP/ec.stub" --nproc0
pass "provider in a child as nobody with RLIMIT_NPROC 0"

# --- what a misconfigured server is told (credentials read as the worker user): which file, why
chmod 711 "$KW_TMP" # nobody may reach the public files below by name, not the credentials
PUB=$KW_TMP/pub
mkdir -m 755 "$PUB"
cp "$KW_TMP/ec.stub" "$KW_TMP/off.cnf" "$KW_TMP/auto.cnf" "$PKI/certs/ecdsa-p256.crt" "$PUB/"
chmod 644 "$PUB"/*
# expect_fail NAME PATTERN... -- ARGS: kw_privdrop must fail, its output matching every PATTERN.
expect_fail() {
    local name=$1 pats=()
    shift
    while [ "$1" != -- ]; do
        pats+=("$1")
        shift
    done
    shift
    if privdrop "$@" >"$KW_TMP/$name.out" 2>&1; then
        fail "$name: succeeded: $(cat "$KW_TMP/$name.out")"
    fi
    local p
    for p in "${pats[@]}"; do
        grep -q -- "$p" "$KW_TMP/$name.out" || fail "$name: no '$p' in: $(cat "$KW_TMP/$name.out")"
    done
    grep -v '^ok' "$KW_TMP/$name.out" | cut -c1-300 | sed -n '1,3s/^/  | /p' || true
}
expect_fail client-unreadable "cannot read the CA file $CRED/ca.crt: Permission denied" -- \
    --server "127.0.0.1:$PORT" --key-cert "$PUB/ecdsa-p256.crt" --drop-first
pass "client: an unreadable credential is named, with the reason"
OPENSSL_CONF=$PUB/off.cnf expect_fail prov-unreadable-off \
    "keyward: error: cannot read client_cert $CRED/edge.crt: Permission denied" \
    "cannot read a local file" -- --server "127.0.0.1:$PORT" --provider "$PUB/ec.stub" \
    --key-cert "$PUB/ecdsa-p256.crt" --drop-first
if grep -q "keyward configuration\|key server unreachable" "$KW_TMP/prov-unreadable-off.out"; then
    fail "prov-unreadable-off: blames the configuration or the key server"
fi
pass "provider, load_check = off: said at load, and each operation names the file and why"
OPENSSL_CONF=$PUB/auto.cnf expect_fail prov-unreadable-auto \
    "loading the stub" "cannot read a local file" \
    "cannot read client_cert $CRED/edge.crt: Permission denied" \
    -- --server "127.0.0.1:$PORT" --provider "$PUB/ec.stub" --key-cert "$PUB/ecdsa-p256.crt" \
    --drop-first
pass "provider, load_check = auto: the stub is refused at load with the real cause"

# --- TLS refusals name the side that refused
out=$("$KW_BIN/keyward" ping --server "127.0.0.1:$PORT" --cert "$PKI/rogue.crt" \
    --key "$PKI/rogue.key" --ca "$PKI/ca.crt" --timeout 3000 2>&1) && fail "rogue edge accepted"
grep -q "the key server refused us (TLS alert: .*unknown ca" <<<"$out" ||
    fail "a refused client certificate is not named as such: $out"
echo "  | $(grep -m1 "refused us" <<<"$out" | cut -c1-300)"
pass "an edge certificate the key server does not trust: 'the key server refused us (TLS alert)'"
