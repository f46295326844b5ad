#!/bin/bash
# An idle edge connection holds no buffers it is not using (issue 16): 300 mTLS connections that
# each answered one ping and then went quiet cost the key server less than 40 KiB each of RSS once
# the idle release has run (about 58 KiB each before: 16 KiB reassembly buffer, 4 KiB reply
# buffer, OpenSSL's two record buffers and the memory BIOs' buffers, all kept for the
# connection's life); and a released connection still answers (the buffers come back on demand).
. "$(dirname "$0")/lib.sh"
if [ "${KW_SANITIZE:-OFF}" = ON ]; then
    echo "skip: ASan builds (redzones and the quarantine make RSS per connection meaningless; make test measures it)"
    exit 0
fi

make_pki
P=$(free_port)
start_keyserver ks "$P" --max-handshakes 1000 --max-handshakes-per-ip 1000 \
    --handshake-timeout-ms 60000
rss() { awk '/^VmRSS/ {print $2}' "/proc/$KS_PID/status"; }
hold() { # N OUT: holds N connections until $KW_TMP/hold.N.in is closed
    mkfifo "$KW_TMP/hold.$1.in"
    timeout 300 python3 "$KW_SOURCE_DIR/tests/integration/tools/kw_hold.py" 127.0.0.1 "$P" \
        "$PKI/edge.crt" "$PKI/edge.key" "$PKI/ca.crt" "$1" <"$KW_TMP/hold.$1.in" \
        >"$KW_TMP/hold.$1.out" 2>&1 &
    KW_PIDS+=($!)
    exec {HOLD_FD}>"$KW_TMP/hold.$1.in"
    wait_for_line "$KW_TMP/hold.$1.out" "^held" "holder of $1 did not get its connections" 240
}
hold 1
sleep 2
before=$(rss)
hold 300
sleep 3 # the release runs 1 s after the last activity, swept every 0.5 s
after=$(rss)
per=$(((after - before) / 300))
echo "RSS $before -> $after KiB: $per KiB per idle connection"
[ "$per" -lt 40 ] || fail "$per KiB per idle connection (goal: buffers released when idle)"
pass "$per KiB per idle connection (300 held)"
kw_cli "$P" ping --count 3 >/dev/null || fail "ping while 300 connections are idle"
pass "the key server still answers"
