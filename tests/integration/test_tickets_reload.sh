#!/bin/bash
# SIGHUP re-reads the key server's --ticket-secret: keys fetched with `keyward tickets` before and
# after a SIGHUP with the same file are equal; after the file is replaced by secret B and SIGHUP
# they differ and equal those of a key server started with B; a secret that fails the start's
# checks (mode 0644, 16 bytes) keeps the running one: the keys stay, the log says why, the reload
# counts as failed in keyward_reloads_total, and the server goes on answering; a changed
# ticket_rotation_s in the config file applies at a SIGHUP too. Every reload's outcome per part is
# in the audit log ("event":"reload"), and no byte of a secret is.
. "$(dirname "$0")/lib.sh"

make_pki
W=$KW_TMP/w
mkdir -p "$W"
for d in a a2 b b2 bad1 bad2 rot; do mkdir -p "$W/$d"; done
head -c 48 /dev/urandom >"$W/secret"
chmod 600 "$W/secret"
head -c 48 /dev/urandom >"$W/secret-b"
chmod 600 "$W/secret-b"

# A week per epoch, so no rotation falls between two fetches of this test.
ROT=604800
PORT=$(free_port)
M_PORT=$(free_port)
# The secret and rotation from a config file, which a SIGHUP reads again (the rotation changes
# at the end).
cat >"$W/ks.yaml" <<YAML
ticket_secret: $W/secret
ticket_rotation_s: $ROT
YAML
start_keyserver ks "$PORT" --config "$W/ks.yaml" --allow "cn:edge=tickets" \
    --metrics "127.0.0.1:$M_PORT" --audit-log "$W/audit.log"
# audit_reload PART RESULT N: waits (5 s) until the audit log has N lines of PART ending RESULT.
audit_reload() {
    local want="\"event\":\"reload\",\"part\":\"$1\",\"result\":\"$2\"}" tries=100
    until [ "$(grep -cF "$want" "$W/audit.log" 2>/dev/null)" -ge "$3" ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "the audit log has not $3 line(s) $want: $(cat "$W/audit.log")"
        sleep 0.05
    done
}
wait_port "$M_PORT" 10 || fail "metrics port not open"
metric() {
    curl -fsS "http://127.0.0.1:$M_PORT/metrics" |
        awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }'
}
fetch() {
    kw_cli "$PORT" tickets --format nginx --out "$W/$1" >"$W/out" 2>&1 ||
        fail "tickets fetch into $1: $(cat "$W/out")"
}
same_keys() {
    local f
    for f in previous current next; do
        cmp -s "$W/$1/$f.key" "$W/$2/$f.key" || return 1
    done
}
different_keys() {
    local f
    for f in previous current next; do
        cmp -s "$W/$1/$f.key" "$W/$2/$f.key" && return 1
    done
    return 0
}

fetch a
ks_hup "reload: ticket secret unchanged"
fetch a2
same_keys a a2 || fail "a SIGHUP with the same secret changed the keys"
audit_reload ticket_secret unchanged 1
audit_reload keys applied 1
audit_reload allow_rules unchanged 1
pass "SIGHUP with the same secret file: keys unchanged, logged as unchanged"

ok0=$(metric 'keyward_reloads_total{result="ok"}')
failed0=$(metric 'keyward_reloads_total{result="failed"}')
cp "$W/secret-b" "$W/secret.new"
mv "$W/secret.new" "$W/secret"
ks_hup "reload: the ticket secret changed"
fetch b
different_keys a b || fail "after secret B and SIGHUP the keys did not all change"
audit_reload ticket_secret changed 1
PORT_B=$(free_port)
start_ks_as_b() {
    start_bg ks-b "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$PORT_B" \
        --cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" \
        --ticket-secret "$W/secret-b" --ticket-rotation-s "$ROT" --allow "cn:edge=tickets"
    wait_port "$PORT_B" 15 || fail "key server ks-b did not start"
}
start_ks_as_b
kw_cli "$PORT_B" tickets --format nginx --out "$W/b2" >"$W/out" 2>&1 ||
    fail "tickets from ks-b: $(cat "$W/out")"
same_keys b b2 || fail "the reloaded keys are not those of a key server started with secret B"
[ "$(metric 'keyward_reloads_total{result="ok"}')" = $((ok0 + 1)) ] ||
    fail "the reload with secret B was not counted ok"
if grep -qaF "$(od -An -tx1 "$W/secret-b" | tr -d ' \n' | head -c 16)" "$KW_TMP/ks.log"; then
    fail "the log holds bytes of the secret"
fi
pass "secret B + SIGHUP: new keys, equal to a key server started with B; counted ok"

# refused N HINT: the secret file now fails a check: SIGHUP refuses it with HINT in the log, the
# keys stay B's, the audit log and keyward_reloads_total count the N-th failure.
refused() {
    ks_hup "reload failed for the ticket secret"
    grep "reload failed for the ticket secret" "$KW_TMP/ks.log" | tail -n 1 | kw_grep "$2" ||
        fail "refusal $1 does not say $2"
    fetch "bad$1"
    same_keys b "bad$1" || fail "refused secret $1 changed the keys"
    audit_reload ticket_secret failed "$1"
    [ "$(metric 'keyward_reloads_total{result="failed"}')" = $((failed0 + $1)) ] ||
        fail "refused secret $1 was not counted as a failed reload"
}

# A secret others may read: refused, the running secret (B) stays.
head -c 48 /dev/urandom >"$W/secret"
chmod 644 "$W/secret"
refused 1 "chmod 600"
pass "a 0644 secret at SIGHUP: keys kept, error logged, reload counted failed"

# A secret too short: refused too.
head -c 16 /dev/urandom >"$W/secret"
chmod 600 "$W/secret"
refused 2 "at least 32"
kw_rawc "$PORT" --op ping --payload-hex 70696e67 --count 2 | kw_grep "2 replies, 0 unexpected" ||
    fail "the key server stopped answering pings"
pass "a 16-byte secret at SIGHUP: keys kept, error logged, counted failed; the server answers: $(
    grep "reload failed for the ticket secret" "$KW_TMP/ks.log" | tail -n 1 | head -c 200)"

# Secret B again with ticket_rotation_s 3600 in the file: the rotation changes, the secret does not.
cp "$W/secret-b" "$W/secret"
chmod 600 "$W/secret"
sed -i "s/^ticket_rotation_s: .*/ticket_rotation_s: 3600/" "$W/ks.yaml"
ks_hup "reload: a ticket key now encrypts for 3600 s (--ticket-rotation-s), was $ROT s"
kw_grep "reload: the ticket secret changed" <(tail -n 3 "$KW_TMP/ks.log") &&
    fail "the same secret B was logged as changed"
now=$(date +%s)
kw_cli "$PORT" tickets --format nginx --out "$W/rot" >"$W/out" 2>&1 || fail "fetch: $(cat "$W/out")"
cur=$(sed -n 's/.*(current \([0-9]*\),.*/\1/p' "$W/out")
[ "$cur" = $((now / 3600)) ] || [ "$cur" = $((now / 3600 + 1)) ] ||
    fail "after ticket_rotation_s 3600 the current epoch is $cur, not $((now / 3600)): $(cat "$W/out")"
audit_reload ticket_rotation changed 1
for f in "$W/secret-b" "$W/secret"; do
    grep -qaF "$(od -An -tx1 "$f" | tr -d ' \n' | head -c 16)" "$W/audit.log" &&
        fail "the audit log holds bytes of a secret"
done
pass "ticket_rotation_s $ROT -> 3600 in the config file at SIGHUP: epoch $cur of 3600 s"
pass "the audit log has each reload's parts: $(grep -c '"event":"reload"' "$W/audit.log") lines, no secret"
