#!/bin/bash
# SIGHUP re-reads the configuration file: a key server runs from a YAML file whose allow rules let
# the edge use the ECDSA key only. On ONE long-lived connection (kw_session, never reconnects):
# RSA is refused; the file gains RSA for the edge, SIGHUP, and RSA is served on the same
# connection; the rule is taken away again, SIGHUP, and the same connection is refused at once
# (revoking a rule needs no restart and no reconnect). A broken file (YAML error) makes the reload
# fail with FILE:LINE and keeps the running rules; a changed listen address is reported as
# needing a restart and not applied. A new keys directory in the file is loaded.
. "$(dirname "$0")/lib.sh"

make_pki
K=$KW_TMP/keys
K2=$KW_TMP/keys2
key_dir "$K" rsa2048 ecdsa-p256
key_dir "$K2" ed25519
RSA=$(kw_keyid "$PKI/keys/rsa2048.crt")
EC=$(kw_keyid "$PKI/keys/ecdsa-p256.crt")
ED=$(kw_keyid "$PKI/keys/ed25519.crt")
KS_PORT=$(free_port)
CONF=$KW_TMP/ks.yaml
# config KEYS...: the YAML file, with the edge allowed the given key specs
config() {
    local listen=${LISTEN:-127.0.0.1:$KS_PORT} keys
    keys=$(printf '"%s", ' "$@")
    cat >"$CONF" <<YAML
listen: "$listen"
cert: $PKI/keyserver.crt
key: $PKI/keyserver.key
ca: $PKI/ca.crt
keys: [$K${KEYS2:+, $KEYS2}]
workers: 2
allow:
  - cn: edge
    keys: [${keys%, }]
  - cn: nobody
    keys: ["*"]
YAML
}
config "sha256:$EC"
start_bg ks "$KW_BIN/keyward-keyserver" --config "$CONF"
KS_PID=$LAST_PID
wait_port "$KS_PORT" 15 || fail "key server did not start"

start_session session "$KS_PORT"
H256=$(printf 'reload me' | openssl dgst -sha256 -binary | xxd -p | tr -d '\n')
MSG=$(printf 'reload me' | xxd -p | tr -d '\n')
expect() { # WHAT OPCODE KEYID PAYLOAD ok|ERROR
    session_ask "op $2 $3 $4"
    case $5 in
    ok) [[ $REPLY_LINE == ok* ]] || fail "$1: expected a result, got: $REPLY_LINE" ;;
    *) [ "$REPLY_LINE" = "error $5" ] || fail "$1: expected error $5, got: $REPLY_LINE" ;;
    esac
}
NA=$(session_ask "op 05 $RSA $H256" && echo "${REPLY_LINE#error }")
case $NA in ok*) fail "RSA allowed before any change" ;; esac
expect "ECDSA at start" 15 "$EC" "$H256" ok
pass "at start the edge may use ECDSA and is refused RSA ($NA)"

config "sha256:$EC" "sha256:$RSA"
ks_hup "reloaded:"
grep -q "reloaded: .*2 allow rule(s)" "$KW_TMP/ks.log" || fail "reload did not report the rules"
expect "RSA after the rule was added" 05 "$RSA" "$H256" ok
expect "ECDSA after the rule was added" 15 "$EC" "$H256" ok
pass "rule added to the file + SIGHUP: RSA served on the same connection"

config "sha256:$EC"
ks_hup "reloaded:"
expect "RSA after the rule was removed" 05 "$RSA" "$H256" "$NA"
expect "ECDSA still" 15 "$EC" "$H256" ok
pass "rule removed + SIGHUP: the same open connection is refused RSA at once"

printf 'allow:\n  - cn: edge\n    keys: [unclosed\n' >>"$CONF"
ks_hup "reload failed"
grep -q "reload failed.*configuration: $CONF:[0-9]" "$KW_TMP/ks.log" ||
    fail "a broken file did not fail the reload with FILE:LINE: $(grep 'reload failed' "$KW_TMP/ks.log" | tail -1)"
expect "ECDSA after a failed reload" 15 "$EC" "$H256" ok
expect "RSA after a failed reload" 05 "$RSA" "$H256" "$NA"
pass "a broken config file fails the reload with FILE:LINE; the running rules stay"

KEYS2=$K2 LISTEN=127.0.0.1:1 config "sha256:$EC" "sha256:$ED"
expect "Ed25519 before its directory is configured" 18 "$ED" "$MSG" key-not-found
ks_hup "reloaded:"
grep -q "changed but only applied at a restart, running values kept: listen" "$KW_TMP/ks.log" ||
    fail "the changed listen address was not reported"
expect "Ed25519 from the new keys directory" 18 "$ED" "$MSG" ok
kill -0 "$KS_PID" || fail "key server died"
"$KW_BIN/keyward" ping --server "127.0.0.1:$KS_PORT" --cert "$PKI/edge.crt" --key "$PKI/edge.key" \
    --ca "$PKI/ca.crt" >/dev/null || fail "the key server stopped listening on its address"
pass "a new keys directory is loaded; a changed listen address is reported, not applied"
