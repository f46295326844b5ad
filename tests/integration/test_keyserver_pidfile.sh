#!/bin/bash
# keyward-keyserver --pid-file FILE: the file holds the server's pid once it listens, so an
# operator signals this key server only (not every one on the host, as `pidof` would); it is
# removed at exit; a pid file that cannot be written stops the start with a message naming it.
. "$(dirname "$0")/lib.sh"

make_pki
PA=$(free_port)
PB=$(free_port)
start_keyserver a "$PA" --pid-file "$KW_TMP/a.pid"
A_PID=$KS_PID
start_keyserver b "$PB"
B_PID=$KS_PID
for _ in $(seq 100); do [ -s "$KW_TMP/a.pid" ] && break; sleep 0.05; done
[ "$(cat "$KW_TMP/a.pid" 2>/dev/null)" = "$A_PID" ] ||
    fail "pid file holds '$(cat "$KW_TMP/a.pid" 2>/dev/null)', not $A_PID"
pass "--pid-file holds the pid ($A_PID) once the server listens"

kill -HUP "$(cat "$KW_TMP/a.pid")"
for _ in $(seq 100); do grep -q "reloaded" "$KW_TMP/a.log" && break; sleep 0.05; done
grep -q "reloaded" "$KW_TMP/a.log" || fail "key server a did not reload"
grep -q "reload" "$KW_TMP/b.log" && fail "key server b reloaded too"
kw_cli "$PA" ping --count 1 >/dev/null || fail "ping after the reload (flags re-read without --pid-file?)"
pass "kill -HUP \$(cat a.pid) reloads that key server only"

kill -TERM "$A_PID"
wait "$A_PID" 2>/dev/null || true
[ ! -e "$KW_TMP/a.pid" ] || fail "pid file left behind after SIGTERM"
pass "the pid file is removed at exit"

PC=$(free_port)
rc=0
timeout 20 "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$PC" --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys" \
    --pid-file="$KW_TMP/no/such/dir/c.pid" >"$KW_TMP/c.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "unwritable pid file: exit $rc: $(cat "$KW_TMP/c.out")"
grep -q "$KW_TMP/no/such/dir/c.pid" "$KW_TMP/c.out" ||
    fail "unwritable pid file not named: $(cat "$KW_TMP/c.out")"
pass "an unwritable pid file stops the start: '$(grep -m1 pid "$KW_TMP/c.out")'"
"$KW_BIN/keyward-keyserver" --help | kw_grep -- "--pid-file" || fail "--help lacks --pid-file"
kill -0 "$B_PID" || fail "key server b died"
