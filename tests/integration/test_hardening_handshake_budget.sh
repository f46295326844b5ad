#!/bin/bash
# Unauthenticated sockets must not take the slots of real edges (issue 20, finding 6). Connections
# still in their TLS handshake have their own, smaller budget (--max-handshakes, and
# --max-handshakes-per-ip per source address); --max-connections counts authenticated edges.
#  1. 250 silent TCP sockets from one address (127.0.0.2) next to --max-connections 20: an edge
#     from 127.0.0.1 still connects and is served (it was locked out: all 20 slots taken).
#  2. 250 silent sockets from 250 addresses (127.0.0.2-251): the handshake budget is full, the
#     oldest silent socket gives way to a new connection, so an edge still gets through.
#  3. --max-connections still bounds authenticated edges; an edge connected before the flood keeps
#     being served throughout.
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT" --max-connections 20 --handshake-timeout-ms 60000
ABUSE=(python3 "$KW_SOURCE_DIR/tests/integration/tools/kw_abuse.py")
start_session s1 "$PORT"
session_ping() {
    echo "ping" >&"$SESS_IN"
    read -r -t 10 line <&"$SESS_OUT" || fail "$1: the established session got no answer"
    [[ $line == pong* ]] || fail "$1: the established session: $line"
}
session_ping "before"

silent() { # silent NAME SOURCES: 250 silent sockets, held until the test ends
    "${ABUSE[@]}" silent --server "127.0.0.1:$PORT" --source "$2" --count 250 --hold-s 120 \
        >"$KW_TMP/$1.out" 2>"$KW_TMP/$1.err" &
    KW_PIDS+=("$!")
    wait_for_line "$KW_TMP/$1.out" "^opened" "$1: the silent sockets did not open" 30
}

silent flood1 127.0.0.2
kw_rawc "$PORT" --op ping --payload-hex 6869 >/dev/null ||
    fail "250 silent sockets from 127.0.0.2 locked an edge on 127.0.0.1 out"
session_ping "flood from one address"
pass "250 silent sockets from one address: a new edge connects, the established one is served"

srcs=$(seq -s, -f '127.0.0.%g' 2 251)
silent flood2 "$srcs"
for i in 1 2 3; do
    kw_rawc "$PORT" --op ping --payload-hex 6869 >/dev/null ||
        fail "250 silent sockets from 250 addresses locked a new edge out (try $i)"
done
session_ping "flood from many addresses"
grep -q "handshake budget" "$KW_TMP/ks.log" || fail "no log line about the handshake budget"
pass "250 more from 250 addresses: new edges still connect (the oldest silent socket gives way)"

# Authenticated edges are still bounded by --max-connections 20 (s1 is one of them).
for i in $(seq 2 20); do start_session "s$i" "$PORT"; done
out=$(kw_rawc "$PORT" --op ping --payload-hex 6869 2>&1) && fail "a 21st edge was served: $out"
grep -q -- "--max-connections 20 reached" "$KW_TMP/ks.log" || fail "no --max-connections line"
pass "--max-connections 20 still bounds authenticated edges"
