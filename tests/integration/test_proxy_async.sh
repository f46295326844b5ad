#!/bin/bash
# keyward-proxy handshakes are asynchronous: with a key server whose every reply is delayed by
# 50 ms (kw_delay_relay in front of it), 500 concurrent handshakes on ONE proxy thread finish in
# well under 500 x 50 ms = 25 s, because a handshake waiting on the key server parks on the
# reply's fd and the thread serves the others meanwhile.
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
