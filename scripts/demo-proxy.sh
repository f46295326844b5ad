#!/bin/bash
# The whole keyward system on loopback: a key server that is the only holder of the site keys,
# a tiny HTTP backend, and keyward-proxy holding only certificates; curl fetches a page through
# the proxy for an RSA and an ECDSA site over TLS 1.2 and 1.3, verifying the certificates.
# Prints what happened, shows the proxy was never given a site key, stops everything.
# Usage: scripts/demo-proxy.sh [BUILD_DIR]   (part of `make demo`)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
for f in bin/keyward-proxy bin/keyward-keyserver lib/keyward.so tests/kw_backend; do
    if [ ! -e "$BUILD/$f" ]; then
        echo "demo-proxy: $BUILD/$f is missing; build first (make build)" >&2
        exit 1
    fi
done

DEMO=$(mktemp -d /tmp/keyward-demo.XXXXXX)
PIDS=()
stop_all() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$DEMO"
}
trap stop_all EXIT
port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
    for _ in $(seq 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo-proxy: $2 did not start; its log:" >&2
    cat "$DEMO/$2.log" >&2
    exit 1
}
say() { printf '\n== %s\n' "$*"; }

say "1. A test PKI and site keys (scripts/make-pki.sh)"
sh "$SRC/scripts/make-pki.sh" "$DEMO/pki" >/dev/null
PKI=$DEMO/pki
echo "site keys: $(cd "$PKI/keys" && echo *.key)"

say "2. The key server: the only process that reads the site keys"
KS=$(port)
"$BUILD/bin/keyward-keyserver" --listen "127.0.0.1:$KS" --cert "$PKI/keyserver.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys" >"$DEMO/keyserver.log" 2>&1 &
PIDS+=($!)
wait_port "$KS" keyserver
echo "keyward-keyserver on 127.0.0.1:$KS, keys from $PKI/keys (mutual TLS, edges need a CA-signed cert)"

say "3. The edge gets certificates only"
EDGE=$DEMO/edge
mkdir -p "$EDGE"
cp "$PKI/certs/rsa2048.crt" "$PKI/certs/ecdsa-p256.crt" "$PKI/edge.crt" "$PKI/edge.key" \
    "$PKI/ca.crt" "$EDGE/"
ls -l "$EDGE" | sed 1d
for site in rsa2048 ecdsa-p256; do
    site_pub=$(openssl x509 -in "$EDGE/$site.crt" -noout -pubkey)
    for f in "$EDGE"/*; do
        if [ "$(openssl pkey -in "$f" -pubout 2>/dev/null)" = "$site_pub" ]; then
            echo "demo-proxy: $f holds the private key of $site!" >&2
            exit 1
        fi
    done
done
echo "checked: no file above holds the private key of rsa2048 or ecdsa-p256 (edge.key is only"
echo "the edge's own identity for mutual TLS with the key server)"

say "4. A tiny HTTP backend and keyward-proxy in front of it"
BP=$(port)
"$BUILD/tests/kw_backend" --listen "127.0.0.1:$BP" --name demo >"$DEMO/backend.log" 2>&1 &
PIDS+=($!)
wait_port "$BP" backend
PP=$(port)
PROXY_ARGS=(--listen "127.0.0.1:$PP" --backend "127.0.0.1:$BP" --proxy-protocol
    --cert "$EDGE/rsa2048.crt" --cert "$EDGE/ecdsa-p256.crt"
    --keyserver "127.0.0.1:$KS" --client-cert "$EDGE/edge.crt" --client-key "$EDGE/edge.key"
    --ca "$EDGE/ca.crt" --provider "$BUILD/lib/keyward.so")
"$BUILD/bin/keyward-proxy" "${PROXY_ARGS[@]}" >"$DEMO/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=($PROXY_PID)
wait_port "$PP" proxy
echo "keyward-proxy ${PROXY_ARGS[*]}" | sed "s|$DEMO|\$DEMO|g"
echo "files given to the proxy:"
tr '\0' '\n' </proc/$PROXY_PID/cmdline | tail -n +2 | grep '^/' | grep -v '\.so$' | sed "s|$DEMO|  \$DEMO|"

say "5. curl --cacert site-ca.crt through the proxy"
for site in rsa2048 ecdsa-p256; do
    for tls in 1.2 1.3; do
        name=$site.example
        body=$(curl -sS --max-time 15 --cacert "$PKI/site-ca.crt" --tlsv"$tls" --tls-max "$tls" \
            --resolve "$name:$PP:127.0.0.1" "https://$name:$PP/hello")
        sig=$(openssl s_client -connect "127.0.0.1:$PP" -servername "$name" -tls"${tls/./_}" \
            -CAfile "$PKI/site-ca.crt" </dev/null 2>/dev/null |
            sed -n 's/^Peer signature type: //p; s/^Verification: //p' | paste -sd' ')
        printf '%-20s TLS %s  certificate verified, signature %-8s backend: %s\n' "$name" "$tls" \
            "${sig%% *}" "$(echo "$body" | sed 's/ src=.*tls=/ ... tls=/')"
        grep -q "tls=TLSv$tls" <<<"$body" || { echo "demo-proxy: unexpected reply" >&2; exit 1; }
    done
done

say "6. What happened"
kill "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
sed -n 's/.*INFO: stopped: /keyward-proxy: /p' "$DEMO/proxy.log"
echo "Every full handshake paused on a key-server reply: the signatures (and nothing else) came"
echo "from keyward-keyserver, so HTTPS was served by a process that never had the keys."
say "Stopping everything"
exit 0
