#!/bin/bash
# keyward-proxy handshakes are asynchronous: with a key server whose every reply is delayed by
# 50 ms (kw_delay_relay in front of it), 500 concurrent handshakes on ONE proxy thread finish in
# well under 500 x 50 ms = 25 s, because a handshake waiting on the key server parks on the
# reply (the provider's completion callback) and the thread serves the others meanwhile. Clients
# that hang up mid-operation leave a connection that lingers until its reply, then is freed.
. "$(dirname "$0")/lib.sh"
if ! proxy_remote_ok; then
    echo "skip: $KW_PROVIDER or keyward-keyserver not built (nothing to wait for with local keys)"
    exit 0
fi
make_pki
N=500
DELAY=50
LIMIT=5 # seconds; serial would be $((N * DELAY / 1000)) s
if [ "${KW_SANITIZE:-OFF}" = ON ]; then
    LIMIT=20 # ASan makes the crypto itself, not the waiting, the bottleneck
fi

KS=$(free_port)
start_keyserver ks "$KS"
RELAY=$(free_port)
start_bg relay "$KW_TESTS/kw_delay_relay" --listen "127.0.0.1:$RELAY" --upstream "127.0.0.1:$KS" \
    --delay-ms "$DELAY"
wait_port "$RELAY" 10 || fail "kw_delay_relay did not start"
BP=$(free_port)
start_backend backend "$BP"
PP=$(free_port)
# shellcheck disable=SC2046
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" --threads 1 --max-connections 2000 \
    --handshake-timeout-ms 60000 \
    --cert "$PKI/certs/ecdsa-p256.crt" --cert "$PKI/certs/rsa2048.crt" $(proxy_ks_args "$RELAY")

load() { # name tls conns count [more kw_hsload args]
    local name=$1 tls=$2 conns=$3 count=$4
    shift 4
    "$KW_TESTS/kw_hsload" --connect "127.0.0.1:$PP" --ca "$PKI/site-ca.crt" --servername "$name" \
        --tls "$tls" --conns "$conns" --count "$count" "$@"
}

# One handshake alone takes at least the delay: the relay really slows the key server down.
out=$(load ecdsa-p256.example 1.3 1 1) || fail "single handshake: $out"
lat=$(echo "$out" | sed -n 's/.*latency avg \([0-9.]*\) ms.*/\1/p')
awk -v l="$lat" -v d="$DELAY" 'BEGIN { exit !(l >= d) }' || fail "one handshake took $lat ms < $DELAY ms"
pass "one handshake through the ${DELAY} ms relay takes $lat ms"

for spec in "ecdsa-p256.example 1.3" "rsa2048.example 1.2" "rsa2048.example 1.3"; do
    set -- $spec
    out=$(load "$1" "$2" "$N" "$N" --path /) || fail "$N concurrent handshakes ($spec): $out"
    secs=$(echo "$out" | sed -n 's/.* failed in \([0-9.]*\) s.*/\1/p')
    echo "$out"
    awk -v s="$secs" -v l="$LIMIT" 'BEGIN { exit !(s < l) }' ||
        fail "$N handshakes ($spec) took $secs s (limit $LIMIT s; serial: $((N * DELAY / 1000)) s)"
    pass "$N concurrent $1 TLS $2 handshakes + requests on one thread in $secs s (serial: $((N * DELAY / 1000)) s)"
done

kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
waits=$(sed -n 's/.*(\([0-9]*\) resumed, \([0-9]*\) waited.*/\2/p' "$KW_TMP/proxy.log")
[ "${waits:-0}" -ge $((3 * N)) ] || fail "only ${waits:-0} handshakes parked on the key server"
pass "$waits handshakes parked on a key-server reply (SSL_ERROR_WANT_ASYNC) instead of blocking"

# Clients that hang up while their key operation is in flight: the connection lingers until the
# key server's reply (the completion callback) lets OpenSSL finish the paused job, then is freed;
# the proxy keeps serving, and stopping it with operations in flight exits cleanly.
SLOW=$(free_port) # a slower relay, so every operation is surely still in flight when we act
start_bg slow "$KW_TESTS/kw_delay_relay" --listen "127.0.0.1:$SLOW" --upstream "127.0.0.1:$KS" \
    --delay-ms 500
wait_port "$SLOW" 10 || fail "kw_delay_relay (500 ms) did not start"
PP2=$(free_port)
# shellcheck disable=SC2046
start_proxy linger "$PP2" --backend "127.0.0.1:$BP" --threads 1 --log-level debug \
    --cert "$PKI/certs/ecdsa-p256.crt" $(proxy_ks_args "$SLOW")
# hang_up N PORT [HOLD_S MARK]: N TLS 1.3 ClientHellos, each connection closed 10 ms later (the
# relay holds the key server's reply for 500 ms); with HOLD_S, all N are sent first, MARK is
# created, and they are closed HOLD_S seconds later.
hang_up() {
    python3 - "$@" <<'PY'
import socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
held = []
for _ in range(int(sys.argv[1])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    s.setblocking(False)
    t = ctx.wrap_socket(s, server_hostname="ecdsa-p256.example", do_handshake_on_connect=False)
    try:
        t.do_handshake()  # sends the ClientHello, then wants the server's reply
    except ssl.SSLWantReadError:
        pass
    if len(sys.argv) > 3:
        held.append(t)  # t owns the socket now: dropping it would close the connection
    else:
        time.sleep(0.01)
        t.close()
if len(sys.argv) > 3:
    open(sys.argv[4], "w").close()
    time.sleep(float(sys.argv[3]))
PY
}
hang_up 20 "$PP2"
wait_for_line "$KW_TMP/linger.log" "key operation still in flight" \
    "no connection closed while its key operation was in flight" 10
sleep 1 # every reply is in: each lingering job has finished
kill -0 "$PROXY_PID" || fail "keyward-proxy died after clients hung up mid-operation"
out=$(curl -sS --cacert "$PKI/site-ca.crt" --resolve "ecdsa-p256.example:$PP2:127.0.0.1" \
    "https://ecdsa-p256.example:$PP2/" 2>&1) || fail "handshake after the hang-ups: $out"
pass "$(grep -c 'key operation still in flight' "$KW_TMP/linger.log") connections closed mid-operation lingered until their reply; the proxy kept serving"
hang_up 20 "$PP2" 2 "$KW_TMP/sent" &
HANG_PID=$!
for _ in $(seq 200); do [ -e "$KW_TMP/sent" ] && break; sleep 0.01; done
[ -e "$KW_TMP/sent" ] || fail "the held ClientHellos were not sent"
kill -TERM "$PROXY_PID"
rc=0
timeout 15 tail --pid="$PROXY_PID" -f /dev/null || fail "keyward-proxy did not stop with operations in flight"
wait "$PROXY_PID" || rc=$?
[ "$rc" = 0 ] || fail "keyward-proxy exited with $rc when stopped with operations in flight"
wait "$HANG_PID" || true
grep -q "key operation still in flight" <(sed -n '/signal 15/,$p' "$KW_TMP/linger.log") ||
    fail "no key operation was in flight at SIGTERM"
pass "SIGTERM with key operations in flight: keyward-proxy exited cleanly"
