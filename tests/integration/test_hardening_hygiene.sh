#!/bin/bash
# Key hygiene of a running keyward-keyserver: core size limit 0, privileges dropped with --user,
# and it still serves signatures afterwards (issue 7, item 5).
. "$(dirname "$0")/lib.sh"
make_pki
if ! id nobody >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "skip: needs root and a 'nobody' user"
    exit 0
fi
port=$(free_port)
start_keyserver ks "$port" --user nobody
pid=$KS_PID
uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
[ "$uid" = "65534 65534 65534 65534" ] || fail "uids after --user nobody: $uid"
pass "real/effective/saved/fs uid are nobody's (65534)"
groups=$(awk '/^Groups:/ {print $2}' "/proc/$pid/status")
[ -z "$groups" ] || [ "$groups" = 65534 ] || fail "supplementary groups kept: $groups"
pass "no supplementary groups"
core=$(awk '/^Max core file size/ {print $5}' "/proc/$pid/limits")
[ "$core" = 0 ] || fail "core size limit is $core, want 0"
pass "core dumps off (RLIMIT_CORE 0)"
# Non-dumpable processes have their /proc files owned by root, not by the process's uid.
owner=$(stat -c %u "/proc/$pid/environ")
[ "$owner" = 0 ] || fail "/proc/$pid/environ owned by uid $owner: process is dumpable"
pass "process is not dumpable (PR_SET_DUMPABLE 0)"
echo hello >"$KW_TMP/msg"
kw_cli "$port" sign --key-cert "$PKI/certs/ecdsa-p256.crt" --alg ecdsa-sha256 \
    --in "$KW_TMP/msg" --out "$KW_TMP/sig" >/dev/null || fail "sign after dropping privileges"
openssl x509 -in "$PKI/certs/ecdsa-p256.crt" -pubkey -noout >"$KW_TMP/pub"
openssl dgst -sha256 -verify "$KW_TMP/pub" -signature "$KW_TMP/sig" "$KW_TMP/msg" >/dev/null ||
    fail "signature does not verify"
pass "serves verified signatures after dropping privileges"
# An unknown user is refused at start, with a clear message.
port2=$(free_port)
if "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$port2" --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys" \
    --user no-such-user-kw >"$KW_TMP/baduser.out" 2>&1; then
    fail "started with an unknown --user"
fi
grep -qi "no-such-user-kw" "$KW_TMP/baduser.out" || fail "no clear message for an unknown user"
pass "unknown --user refused at start"
