#!/bin/bash
# Fleet session-ticket keys on the key server (issue 19): two key servers with the same
# --ticket-secret hand out identical keys (`keyward tickets --format nginx` files compared byte
# for byte); a forwarding key server without a secret passes 0xA4 through to its upstream; an
# edge whose rule does not name `tickets` (and any edge when no rule does) gets 0x40; the audit
# log has one ticket-keys line per request; a secret readable by others or shorter than 32 bytes
# stops the key server at start; with --ticket-rotation-s 4 the epochs move on.
. "$(dirname "$0")/lib.sh"

make_pki
make_peer_identity ks-fwd
W=$KW_TMP/w
mkdir -p "$W/a" "$W/b" "$W/c" "$W/r1" "$W/r2"
head -c 48 /dev/urandom >"$W/secret"
chmod 600 "$W/secret"

PORT_A=$(free_port)
PORT_B=$(free_port)
start_keyserver ks-a "$PORT_A" --ticket-secret "$W/secret" --allow "cn:edge=*,tickets" \
    --allow "cn:edge2=*" --allow "cn:ks-fwd=tickets" --audit-log "$W/audit-a.log"
start_keyserver ks-b "$PORT_B" --ticket-secret "$W/secret" --allow "cn:edge=tickets"

kw_cli "$PORT_A" tickets --format nginx --out "$W/a" >"$W/out" 2>&1 ||
    fail "tickets from ks-a: $(cat "$W/out")"
kw_cli "$PORT_B" tickets --format nginx --out "$W/b" >"$W/out" 2>&1 ||
    fail "tickets from ks-b: $(cat "$W/out")"
for f in current previous next; do
    [ "$(stat -c %s "$W/a/$f.key")" = 80 ] || fail "$f.key is not 80 bytes"
    [ "$(stat -c %a "$W/a/$f.key")" = 600 ] || fail "$f.key is not mode 600"
    # the same epoch unless an hour boundary passed between the two fetches
    cmp -s "$W/a/$f.key" "$W/b/$f.key" || fail "ks-a and ks-b gave different $f.key"
done
cmp -s "$W/a/current.key" "$W/a/next.key" && fail "current and next key are the same"
pass "two key servers with the same secret give identical keys: $(head -c 120 "$W/out")"

# Chain: ks-fwd has no secret; it forwards 0xA4 to ks-a, which grants ks-fwd 'tickets'.
PORT_F=$(free_port)
start_ks_as ks-fwd "$PORT_F" ks-fwd --upstream "127.0.0.1:$PORT_A" --allow "cn:edge=tickets"
kw_cli "$PORT_F" tickets --format nginx --out "$W/c" >"$W/out" 2>&1 ||
    fail "tickets through ks-fwd: $(cat "$W/out")"
cmp -s "$W/a/current.key" "$W/c/current.key" || fail "forwarded keys differ"
pass "a key server without a secret forwards 0xA4 upstream"

# Refusals: edge2's rule names keys but not tickets; with no rule naming tickets nobody gets them.
kw_rawclient_edge2() {
    "$KW_TESTS/kw_rawclient" --server "127.0.0.1:$1" --cert "$PKI/edge2.crt" \
        --key "$PKI/edge2.key" --ca "$PKI/ca.crt" --op 0xa4 --expect-error 0x40
}
kw_rawclient_edge2 "$PORT_A" >/dev/null || fail "edge2 (rule without tickets) must get 0x40"
PORT_N=$(free_port)
start_keyserver ks-n "$PORT_N" --ticket-secret "$W/secret"
kw_rawc "$PORT_N" --op 0xa4 --expect-error 0x40 >/dev/null ||
    fail "no rules: 0xA4 must be 0x40 (default deny)"
PORT_S=$(free_port)
start_keyserver ks-s "$PORT_S" --allow "cn:edge=*"
kw_rawc "$PORT_S" --op 0xa4 --expect-error 0x40 >/dev/null ||
    fail "no --ticket-secret: 0xA4 must be 0x40"
kw_grep "not authorised for the session-ticket keys" "$KW_TMP/ks-a.log" ||
    fail "ks-a did not log the refusal of edge2"
pass "an edge not granted 'tickets' gets 0x40 (rule without it, no rules, no secret)"

n=$(kw_audit_count "$W/audit-a.log" '"opcode":"ticket-keys","result":"ok"')
[ "$n" -ge 2 ] || fail "audit log: expected >= 2 ok ticket-keys lines, got $n"
d=$(kw_audit_count "$W/audit-a.log" '"opcode":"ticket-keys","result":"denied"')
[ "$d" -ge 1 ] || fail "audit log: expected the refusal of edge2"
pass "audit log: $n ticket-keys lines ok, $d refused"

# Bad secrets stop the key server at start with a sentence that says what to do.
head -c 48 /dev/urandom >"$W/open"
chmod 644 "$W/open"
PORT_X=$(free_port)
if "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$PORT_X" --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --ticket-secret "$W/open" >"$W/bad" 2>&1; then
    fail "a world-readable ticket secret must be refused"
fi
grep -q "chmod 600" "$W/bad" || fail "no advice for a readable secret: $(cat "$W/bad")"
head -c 16 /dev/urandom >"$W/short"
chmod 600 "$W/short"
if "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$PORT_X" --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --ticket-secret "$W/short" >"$W/bad" 2>&1; then
    fail "a 16-byte ticket secret must be refused"
fi
grep -q "at least 32" "$W/bad" || fail "no advice for a short secret: $(cat "$W/bad")"
pass "secrets readable by others or shorter than 32 bytes are refused: $(head -c 160 "$W/bad")"

# Rotation: 4-second epochs; after one rotation the old current key is the new previous one.
PORT_R=$(free_port)
start_keyserver ks-r "$PORT_R" --ticket-secret "$W/secret" --ticket-rotation-s 4 \
    --allow "cn:edge=tickets"
kw_cli "$PORT_R" tickets --format nginx --out "$W/r1" >/dev/null 2>&1 || fail "ks-r fetch 1"
sleep 4.2
kw_cli "$PORT_R" tickets --format nginx --out "$W/r2" >/dev/null 2>&1 || fail "ks-r fetch 2"
cmp -s "$W/r1/current.key" "$W/r2/previous.key" || fail "after 4 s the current key must be previous"
cmp -s "$W/r1/next.key" "$W/r2/current.key" || fail "after 4 s the next key must be current"
pass "with --ticket-rotation-s 4 the keys move one epoch on after 4 s"
