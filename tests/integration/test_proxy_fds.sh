#!/bin/bash
# keyward-proxy's file descriptors and a backend that cannot be reached (issue 14, item 5):
# * an established tunnel holds two descriptors (client, backend): the provider's eventfd lives
#   only while a key operation is pending;
# * a --max-connections that the open-file limit cannot carry is capped, with a warning, so the
#   proxy refuses clients at accept instead of failing them after their handshake;
# * with the backend down, a client is closed before its handshake makes a key operation.
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || { echo "skip: keyward.so not built"; exit 0; }
BP=$(free_port)
start_backend backend "$BP"
BACKEND=$BACKEND_PID
KS=$(free_port)
AUDIT=$KW_TMP/audit.log
start_keyserver ks "$KS" --audit-log "$AUDIT"
# shellcheck disable=SC2207
KEYARGS=(--cert "$PKI/certs/ecdsa-p256.crt" $(proxy_ks_args "$KS"))
sign_ops() { grep -c '"opcode":"ecdsa-' "$AUDIT" 2>/dev/null || true; }
nfds() { find /proc/"$1"/fd -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# hold PORT N SECONDS: N TLS clients that complete their handshake and then hold the tunnel open
# (a request without its final CRLF) for SECONDS; prints how many connected.
hold() {
    python3 - "$1" "$2" "$3" "$PKI/site-ca.crt" <<'PY' &
import socket, ssl, sys, time
port, n, secs, ca = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ok, socks = 0, []
for _ in range(n):
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                            server_hostname="localhost")
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        socks.append(s)
        ok += 1
    except (OSError, ssl.SSLError):
        pass
print(ok, flush=True)
time.sleep(secs)
PY
    HOLD=$!
}

# 1. Descriptors per established tunnel: two sockets, and no eventfd kept.
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 1
evfds() { find /proc/"$1"/fd -mindepth 1 -maxdepth 1 -lname 'anon_inode:*eventfd*' 2>/dev/null | wc -l; }
hold "$PP" 5 0.5 >/dev/null # warm-up: the key-server connections are up
wait "$HOLD"
sleep 0.3
base=$(nfds "$PROXY_PID")
ev0=$(evfds "$PROXY_PID")
hold "$PP" 50 4 >"$KW_TMP/hold1.out"
for _ in $(seq 1 60); do [ -s "$KW_TMP/hold1.out" ] && break; sleep 0.1; done
sleep 0.3
held=$(nfds "$PROXY_PID")
ev1=$(evfds "$PROXY_PID")
[ "$(cat "$KW_TMP/hold1.out")" = 50 ] || fail "only $(cat "$KW_TMP/hold1.out") of 50 tunnels came up"
per=$(awk -v a="$held" -v b="$base" 'BEGIN{printf "%.2f", (a - b) / 50}')
echo "descriptors: $base before, $held with 50 tunnels; eventfds $ev0 before, $ev1 with them"
[ "$ev1" -le "$ev0" ] || fail "$((ev1 - ev0)) eventfds more with 50 established tunnels"
awk -v p="$per" 'BEGIN{exit !(p <= 2.1)}' || fail "$per descriptors per established tunnel (want 2)"
pass "50 established tunnels: $per descriptors each, no eventfd held"
wait "$HOLD"
kw_stop "$PROXY_PID" || true

# 2. An open-file limit of 256 cannot carry --max-connections 10000: capped with a warning; 150
#    clients that hold their tunnels get no "too many open files" and no key operation is wasted.
PP=$(free_port)
(
    ulimit -n 256
    exec "$KW_BIN/keyward-proxy" --listen "127.0.0.1:$PP" --backend "127.0.0.1:$BP" \
        "${KEYARGS[@]}" --threads 1 --max-connections 10000
) >"$KW_TMP/proxy-limit.log" 2>&1 &
LPID=$!
KW_PIDS+=("$LPID")
wait_port "$PP" 20 || fail "the proxy under ulimit -n 256 did not start"
grep -q "max-connections 10000 needs" "$KW_TMP/proxy-limit.log" ||
    fail "no warning about --max-connections and the open-file limit"
cap=$(sed -n 's/.*serving at most \([0-9]*\) connections.*/\1/p' "$KW_TMP/proxy-limit.log")
pass "open-file limit 256: $(grep -o 'max-connections 10000 needs.*' "$KW_TMP/proxy-limit.log")"
ops0=$(sign_ops)
hold "$PP" 150 2 >"$KW_TMP/hold2.out"
wait "$HOLD"
served=$(cat "$KW_TMP/hold2.out")
sleep 0.3
ops=$(($(sign_ops) - ops0))
! grep -qi "too many open files" "$KW_TMP/proxy-limit.log" ||
    fail "the proxy ran out of descriptors: $(grep -i -m1 'too many open files' "$KW_TMP/proxy-limit.log")"
[ "$served" -le "$cap" ] && [ "$served" -ge $((cap * 3 / 4)) ] ||
    fail "$served of 150 clients got a tunnel with the cap at $cap"
[ "$ops" -le $((served + 2)) ] || fail "$ops key operations for $served tunnels"
pass "150 clients under the cap of $cap: $served tunnels, $ops key operations, no descriptor shortage"
kw_stop "$LPID" || true

# 3. Backend down: the client is closed before its handshake, no key operation.
PP=$(free_port)
start_proxy proxy-down "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 1
kill "$BACKEND"
wait "$BACKEND" 2>/dev/null || true
ops0=$(sign_ops)
for i in 1 2 3 4 5; do
    rc=0
    OPENSSL_CONF=/dev/null curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$PP:127.0.0.1" -o /dev/null "https://localhost:$PP/$i" 2>/dev/null ||
        rc=$?
    [ "$rc" != 0 ] || fail "served with the backend down"
done
sleep 0.3
[ "$(sign_ops)" = "$ops0" ] ||
    fail "$(($(sign_ops) - ops0)) key operations spent on clients whose backend was down"
pass "backend down: 5 clients refused (curl exit $rc), no key operation spent"
