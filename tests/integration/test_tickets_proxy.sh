#!/bin/bash
# Fleet session resumption across keyward-proxy edges (issue 19): sessions from `openssl s_client
# -sess_out` at edge A resume ("Reused") at edge B over TLS 1.3 and TLS 1.2 with no key operation
# in the key server's audit log; after a rotation (--ticket-rotation-s 4) an old ticket still
# resumes within its window and is refused after it (a full handshake: one key operation); an
# edge with the default session-id context does not resume sessions of another context; edges
# without --tickets-from-keyserver keep their own keys (no cross-edge resumption); an edge whose
# key server is gone keeps its last keys with a WARN.
. "$(dirname "$0")/lib.sh"
proxy_remote_ok || {
    echo "SKIP: keyward.so or keyward-keyserver not built"
    exit 0
}
make_pki
W=$KW_TMP/w
mkdir -p "$W"
head -c 32 /dev/urandom >"$W/secret"
chmod 600 "$W/secret"

BP=$(free_port)
start_backend backend "$BP"
KS=$(free_port)
start_keyserver ks "$KS" --ticket-secret "$W/secret" --ticket-rotation-s 4 \
    --allow "cn:edge=*,tickets" --audit-log "$W/audit.log"
# shellcheck disable=SC2207
KEYARGS=($(proxy_ks_args "$KS"))
CERT=(--cert "$PKI/certs/ecdsa-p256.crt")

PA=$(free_port)
PB=$(free_port)
PC=$(free_port)
start_proxy edge-a "$PA" --backend "127.0.0.1:$BP" "${CERT[@]}" "${KEYARGS[@]}" \
    --tickets-from-keyserver --threads 1
start_proxy edge-b "$PB" --backend "127.0.0.1:$BP" "${CERT[@]}" "${KEYARGS[@]}" \
    --tickets-from-keyserver --threads 1
start_proxy edge-c "$PC" --backend "127.0.0.1:$BP" "${CERT[@]}" "${KEYARGS[@]}" --threads 1
kw_grep "session-ticket keys from the key servers" "$KW_TMP/edge-a.log" ||
    fail "edge A did not fetch the ticket keys: $(tail -3 "$KW_TMP/edge-a.log")"

key_ops() { kw_audit_count "$W/audit.log" '"opcode":"(ecdsa|rsa|tls)'; }

# Align to the start of an epoch so a ticket is well inside its window.
wait_epoch_start() {
    local t
    t=$(date +%s.%N)
    sleep "$(awk -v t="$t" 'BEGIN { r = 4 - (t % 4); print (r < 3.6 ? r + 0.2 : 0.2) }')"
}

for ver in 1_3 1_2; do
    wait_epoch_start
    tls_session "$PA" "$ver" "$W/a$ver" -sess_out "$W/sess$ver"
    grep -q "^New," "$W/a$ver" || fail "TLS $ver: first handshake at A: $(head -5 "$W/a$ver")"
    before=$(key_ops)
    tls_session "$PB" "$ver" "$W/b$ver" -sess_in "$W/sess$ver"
    grep -q "^Reused," "$W/b$ver" || fail "TLS $ver: session from A not resumed at B"
    after=$(key_ops)
    [ "$after" = "$before" ] || fail "TLS $ver: resumption at B cost $((after - before)) key ops"
    tls_session "$PC" "$ver" "$W/c$ver" -sess_in "$W/sess$ver"
    grep -q "^New," "$W/c$ver" || fail "TLS $ver: edge C (own keys) must not resume A's session"
    pass "TLS ${ver/_/.}: session from edge A resumed at edge B with no key operation ($before key ops before and after); edge C (own keys) refused it"
done

# Rotation: a ticket of epoch e is accepted until epoch e+2 begins.
wait_epoch_start
tls_session "$PA" 1_3 "$W/r0" -sess_out "$W/rot"
grep -q "^New," "$W/r0" || fail "rotation: first handshake"
sleep 4
tls_session "$PB" 1_3 "$W/r1" -sess_in "$W/rot"
grep -q "^Reused," "$W/r1" || fail "rotation: a ticket of the previous epoch must still resume"
sleep 4.5
before=$(key_ops)
tls_session "$PB" 1_3 "$W/r2" -sess_in "$W/rot"
grep -q "^New," "$W/r2" || fail "rotation: a ticket two epochs old must be refused"
after=$(key_ops)
[ $((after - before)) = 1 ] || fail "rotation: the full handshake took $((after - before)) key ops"
pass "rotation (4 s): a ticket resumes one epoch later and is refused two epochs later (full handshake, 1 key operation)"

# Key server gone: the edges keep their keys with a WARN and still resume within the window.
# B is asked right after its first failed fetch (it fetches just after each rotation, at a time
# of its own): a fixed sleep could land after the last kept epoch ends (4 s epochs here).
wait_epoch_start
tls_session "$PA" 1_3 "$W/k0" -sess_out "$W/ks"
grep -q "^New," "$W/k0" || fail "key server down: first handshake at A"
kw_stop "$KS_PID" || true
wait_for_line "$KW_TMP/edge-b.log" "cannot fetch them from the key servers" \
    "edge B did not warn that the key servers are unreachable" 10
tls_session "$PB" 1_3 "$W/k1" -sess_in "$W/ks"
grep -q "^Reused," "$W/k1" || fail "key server down: B must still resume with its last keys"
pass "key server down: the last keys are kept (WARN logged) and sessions still resume"
