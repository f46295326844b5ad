#!/bin/bash
# Audit lines survive SIGKILL (issue 20, finding 8): a key operation's audit line is written to the
# file (write(2), so it is in the kernel) before its reply is sent. 200 signatures answered, then
# kill -9: the file has exactly 200 lines. Then the same with --audit-fsync, and the YAML key.
. "$(dirname "$0")/lib.sh"

make_pki
W=$KW_TMP/w
mkdir -p "$W"
head -c 4000 /dev/urandom >"$W/msg"
openssl dgst -sha256 -binary "$W/msg" >"$W/dgst"

# run_and_kill NAME [keyserver args...]: 200 ECDSA + 20 RSA signatures (10 in flight), every reply
# read; then SIGKILL at once; prints the number of lines in the audit log.
run_and_kill() {
    local name=$1 port log
    shift
    port=$(free_port)
    log=$W/$name.audit
    start_keyserver "$name" "$port" --audit-log "$log" "$@"
    kw_rawc "$port" --op 0x15 --key-cert "$PKI/certs/ecdsa-p256.crt" --payload-file "$W/dgst" \
        --count 200 --inflight 10 | kw_grep "200 replies, 0 unexpected" || fail "$name: 200 signs"
    kw_rawc "$port" --op 0x05 --key-cert "$PKI/certs/rsa2048.crt" --payload-file "$W/dgst" \
        --count 20 --inflight 10 | kw_grep "20 replies, 0 unexpected" || fail "$name: 20 RSA signs"
    kill -KILL "$KS_PID"
    wait "$KS_PID" 2>/dev/null || true
    wc -l <"$log"
}

n=$(run_and_kill ks)
[ "$n" = 220 ] || fail "220 operations answered, then SIGKILL: $n audit lines on disk (want 220)"
pass "220 operations answered, then SIGKILL: all 220 audit lines on disk"

n=$(run_and_kill ks_fsync --audit-fsync)
[ "$n" = 220 ] || fail "--audit-fsync: $n audit lines on disk after SIGKILL (want 220)"
pass "--audit-fsync: all 220 lines on disk after SIGKILL"

printf 'audit_fsync: true\n' >"$W/ks.yaml"
n=$(run_and_kill ks_yaml --config "$W/ks.yaml")
[ "$n" = 220 ] || fail "audit_fsync in YAML: $n audit lines on disk after SIGKILL (want 220)"
grep -q "audit log .*fsync" "$KW_TMP/ks_yaml.log" || fail "audit_fsync: no 'fsync' in the start log"
pass "YAML audit_fsync: true is read (and logged at start)"
