#!/bin/bash
# Reloads never widen access by accident (issue 20, item 4). A key server runs from a YAML file
# whose rule lets the edge use RSA and ECDSA; one long-lived connection (kw_session) is open.
#  1. The rule is narrowed to ECDSA and, in the same change, a broken key file appears: the keys
#     are not reloaded (the running ones stay), but the narrowed rule applies at once: RSA is
#     refused on the same connection. The log names what changed and what failed.
#  2. Every rule is removed: refused with a clear error (that would let every edge use every
#     key), the running rule stays: RSA still refused, edge2 still refused.
#  3. allow_all: true: the removal is applied on purpose; RSA is served again.
# Before the fix, step 1 kept the old (wider) rule with the old keys, and step 2 opened every key
# to every edge.
. "$(dirname "$0")/lib.sh"

make_pki
K=$KW_TMP/keys
key_dir "$K" rsa2048 ecdsa-p256
RSA=$(kw_keyid "$PKI/keys/rsa2048.crt")
EC=$(kw_keyid "$PKI/keys/ecdsa-p256.crt")
KS_PORT=$(free_port)
CONF=$KW_TMP/ks.yaml
# config [ALLOW-SECTION]: the YAML file with the given allow section (or none)
config() {
    cat >"$CONF" <<YAML
listen: "127.0.0.1:$KS_PORT"
cert: $PKI/keyserver.crt
key: $PKI/keyserver.key
ca: $PKI/ca.crt
keys: [$K]
workers: 2
$1
YAML
}
rules() { # KEYSPECS...: the edge may use these keys
    local keys
    keys=$(printf '"%s", ' "$@")
    printf 'allow:\n  - cn: edge\n    keys: [%s]\n' "${keys%, }"
}
config "$(rules "sha256:$EC" "sha256:$RSA")"
start_bg ks "$KW_BIN/keyward-keyserver" --config "$CONF"
KS_PID=$LAST_PID
wait_port "$KS_PORT" 15 || fail "key server did not start"

start_session session "$KS_PORT"
H256=$(printf 'reload rules' | openssl dgst -sha256 -binary | xxd -p | tr -d '\n')
expect() { # WHAT OPCODE KEYID ok|ERROR
    session_ask "op $2 $3 $H256"
    case $4 in
    ok) [[ $REPLY_LINE == ok* ]] || fail "$1: expected a result, got: $REPLY_LINE" ;;
    *) [ "$REPLY_LINE" = "error $4" ] || fail "$1: expected error $4, got: $REPLY_LINE" ;;
    esac
}
edge2_rsa() {
    "$KW_TESTS/kw_rawclient" --server "127.0.0.1:$KS_PORT" --cert "$PKI/edge2.crt" \
        --key "$PKI/edge2.key" --ca "$PKI/ca.crt" --op 0x05 --key-digest "$RSA" \
        --payload-hex "$H256" "$@"
}
expect "RSA at start" 05 "$RSA" ok
expect "ECDSA at start" 15 "$EC" ok
pass "at start the edge may use RSA and ECDSA"

# 1. narrow the rule + a broken key file in the same change
config "$(rules "sha256:$EC")"
echo "not a key" >"$K/broken.key"
ks_hup "reload failed"
grep "reload failed" "$KW_TMP/ks.log" | tail -1 | kw_grep "1 key file(s) refused" ||
    fail "the key failure is not reported"
session_ask "op 05 $RSA $H256"
case $REPLY_LINE in
ok*) fail "a broken key file kept the old, wider rule: RSA still served after narrowing" ;;
"error not-authorised") ;;
*) fail "RSA after narrowing: expected not-authorised, got: $REPLY_LINE" ;;
esac
DENIED=not-authorised
expect "ECDSA after the partial reload" 15 "$EC" ok
grep -q "reload: allow rules applied although the keys were not reloaded" "$KW_TMP/ks.log" ||
    fail "the log does not say the rules were applied"
grep -q "allow rules: 1 rule(s), was 1; removed: cn:edge=sha256:$EC,sha256:$RSA; added: cn:edge=sha256:$EC" \
    "$KW_TMP/ks.log" || fail "the log does not name the changed rule: $(grep 'allow rules:' "$KW_TMP/ks.log" | tail -1)"
pass "narrowed rule + broken key file: keys kept, the narrowed rule applies at once (RSA: $REPLY_LINE)"

# 2. remove every rule: refused, the running rule stays
rm -f "$K/broken.key"
config ""
ks_hup "reload failed for the allow rules"
grep "reload failed for the allow rules" "$KW_TMP/ks.log" | tail -1 |
    kw_grep "no allow rules.*allow_all: true" || fail "no clear error for removing every rule"
expect "RSA after removing every rule" 05 "$RSA" "$DENIED"
expect "ECDSA after removing every rule" 15 "$EC" ok
edge2_rsa --expect-error 0x40 >/dev/null || fail "edge2 must still be refused after removing every rule"
grep -q "reloaded: 2 keys (was 2)" "$KW_TMP/ks.log" || fail "the keys (now without the broken file) were not reloaded"
pass "removing every rule without allow_all is refused ($(grep 'reload failed for the allow rules' "$KW_TMP/ks.log" | tail -1 | cut -c1-60)...); the running rule stays"

# 3. allow_all: true
config "allow_all: true"
ks_hup "reloaded:"
grep -q "allow rules: 0 rule(s), was 1; removed: cn:edge=sha256:$EC" "$KW_TMP/ks.log" ||
    fail "the log does not name the removed rule"
expect "RSA with allow_all" 05 "$RSA" ok
edge2_rsa >/dev/null || fail "edge2 may use RSA with allow_all"
pass "allow_all: true removes the rules on purpose; every edge may use every key"

# allow_all with rules is a contradiction: refused, the running state kept.
config "allow_all: true
$(rules "sha256:$EC")"
ks_hup "reload failed"
grep "reload failed" "$KW_TMP/ks.log" | tail -1 | kw_grep "contradict" ||
    fail "allow_all with rules must be refused"
expect "RSA after the refused contradiction" 05 "$RSA" ok
pass "allow_all together with rules is refused; the running configuration stays"
