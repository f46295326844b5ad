#!/bin/bash
# A second keyward-proxy on an address another process already listens on: refused at start with
# the address and the cause, instead of silently sharing the port through SO_REUSEPORT (the
# kernel would spread clients over both). --reuse-port asks for sharing on purpose (a new proxy
# taking over from one drained with SIGQUIT); the takeover then loses no client.
. "$(dirname "$0")/lib.sh"
make_pki

BP=$(free_port)
start_backend backend "$BP"
KS=$(free_port)
start_keyserver ks "$KS"
# shellcheck disable=SC2207
KEYARGS=($(proxy_ks_args "$KS"))
ARGS=(--backend "127.0.0.1:$BP" --cert "$PKI/certs/ecdsa-p256.crt" "${KEYARGS[@]}" --threads 2)

PP=$(free_port)
start_proxy first "$PP" "${ARGS[@]}"
FIRST=$PROXY_PID
curl_expect "the first proxy serves" "$PP" "backend"

# ---- a second proxy on the same address is refused, naming the address and the way out
rc=0
timeout 20 "$KW_BIN/keyward-proxy" --listen "127.0.0.1:$PP" "${ARGS[@]}" \
    >"$KW_TMP/second.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] ||
    fail "a second proxy on 127.0.0.1:$PP started (rc $rc): $(cat "$KW_TMP/second.log")"
grep -q "127.0.0.1:$PP" "$KW_TMP/second.log" && grep -q "in use" "$KW_TMP/second.log" &&
    grep -q -- "--reuse-port" "$KW_TMP/second.log" ||
    fail "the refusal does not name the address, the cause and --reuse-port: $(cat "$KW_TMP/second.log")"
pass "second proxy refused: '$(grep "in use" "$KW_TMP/second.log" | head -n1)'"
# another program on the port (not a keyward-proxy) too
OP=$(free_port)
python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$OP" &
KW_PIDS+=("$!")
wait_port "$OP" 10 || fail "python listener"
rc=0
timeout 20 "$KW_BIN/keyward-proxy" --listen "127.0.0.1:$OP" "${ARGS[@]}" \
    >"$KW_TMP/third.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "in use" "$KW_TMP/third.log" ||
    fail "a proxy on a port held by another program: rc $rc: $(cat "$KW_TMP/third.log")"
pass "a port held by another program is refused too"

# ---- --reuse-port: a new proxy shares the address on purpose, then takes over
start_proxy second "$PP" "${ARGS[@]}" --reuse-port
SECOND=$PROXY_PID
wait_for_line "$KW_TMP/second.log" "listening on" "the second proxy (--reuse-port) did not start" 20
kill -QUIT "$FIRST"
for i in $(seq 1 20); do
    curl_expect "request $i during the takeover" "$PP" "backend" >/dev/null
done
kw_stop "$FIRST" 40 || fail "the first proxy did not drain and exit"
curl_expect "after the takeover, the new proxy serves" "$PP" "backend"
kill -0 "$SECOND" || fail "the second proxy exited"
pass "--reuse-port: the second proxy shared the port and took over with no failed request"
