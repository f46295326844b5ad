#!/bin/bash
# keyward-proxy end to end: curl and openssl s_client through the proxy to kw_backend, with the
# site keys on a key server (or local keys when the provider is not built): RSA and ECDSA over
# TLS 1.2 and 1.3, SNI (exact, wildcard, default), ALPN, PROXY v2, TLS 1.2 RSA key exchange,
# large transfers, backpressure, half-close, YAML config, backend down, key server down.
. "$(dirname "$0")/lib.sh"
make_pki

# A wildcard site certificate, *.wild.example, on an ECDSA P-384 key (the key server gets it).
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-384 -subj "/CN=*.wild.example" \
    -keyout "$PKI/keys/wild.key" -out "$KW_TMP/wild.csr" 2>/dev/null
openssl x509 -req -in "$KW_TMP/wild.csr" -CA "$PKI/site-ca.crt" -CAkey "$PKI/site-ca.key" \
    -CAcreateserial -days 30 -out "$PKI/keys/wild.crt" 2>/dev/null \
    -extfile <(printf 'subjectAltName=DNS:*.wild.example\nextendedKeyUsage=serverAuth\n')
cp "$PKI/keys/wild.crt" "$PKI/certs/wild.crt"

BP=$(free_port)
start_backend backend "$BP"
MAIN_BACKEND_PID=$BACKEND_PID

if proxy_remote_ok; then
    MODE=keyserver
    KS=$(free_port)
    start_keyserver ks "$KS"
    # shellcheck disable=SC2207
    KEYARGS=($(proxy_ks_args "$KS"))
    CERTS=(--cert "$PKI/certs/rsa2048.crt" --cert "$PKI/certs/ecdsa-p256.crt"
        --cert "$PKI/certs/wild.crt")
else
    MODE=local
    echo "note: $KW_PROVIDER not built: testing with local key files"
    KEYARGS=()
    CERTS=()
    for k in rsa2048 ecdsa-p256 wild; do
        CERTS+=(--cert "$PKI/keys/$k.crt,$PKI/keys/$k.key")
    done
fi

PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" "${CERTS[@]}" "${KEYARGS[@]}" \
    --proxy-protocol --alpn http/1.1 --threads 2
MAIN_PROXY_PID=$PROXY_PID
pass "keyward-proxy started ($MODE keys): $(grep -c 'certificate' "$KW_TMP/proxy.log") certificates"

if [ "$MODE" = keyserver ]; then
    ! tr '\0' '\n' </proc/"$PROXY_PID"/cmdline | kw_grep "^$PKI/keys/" ||
        fail "the proxy was given a file from the key server's key directory"
    pass "the proxy's command line names no site key (only certificates and its mTLS identity)"
fi

# get NAME PATH [curl args...]: HTTPS GET through the proxy, verifying NAME against site-ca.
get() {
    local name=$1 path=$2
    shift 2
    curl -sS --max-time 15 --cacert "$PKI/site-ca.crt" --resolve "$name:$PP:127.0.0.1" "$@" \
        "https://$name:$PP$path"
}

# s_client NAME [args...]: handshake details (subject, signature type, protocol); stdin is sent.
s_client() {
    local name=$1
    shift
    openssl s_client -connect "127.0.0.1:$PP" -servername "$name" -CAfile "$PKI/site-ca.crt" \
        "$@" 2>&1 || true
}

for tls in 1.2 1.3; do
    for site in rsa2048 ecdsa-p256; do
        name=$site.example
        out=$(get "$name" "/$site" --tlsv"$tls" --tls-max "$tls") || fail "curl $name TLS $tls"
        grep -q "path=/$site proxy=v2 .*authority=$name alpn=http/1.1 tls=TLSv$tls" <<<"$out" ||
            fail "unexpected reply for $name TLS $tls: $out"
        hs=$(s_client "$name" "-tls${tls/./_}" </dev/null)
        grep -q "subject=.*CN = $name" <<<"$hs" || fail "SNI $name: wrong certificate"
        grep -q "Verify return code: 0" <<<"$hs" || fail "SNI $name: not verified"
        case $site in
        rsa*) grep -Eq "Peer signature type: RSA|Server public key is 2048" <<<"$hs" ||
            fail "no RSA signature for $name" ;;
        ecdsa*) grep -q "Peer signature type: ECDSA" <<<"$hs" ||
            fail "no ECDSA signature for $name" ;;
        esac
        pass "TLS $tls $site: curl verified $name, SNI chose its certificate, backend got the request"
    done
done

out=$(get localhost /default) || fail "curl localhost"
s_client localhost </dev/null | kw_grep "subject=.*CN = rsa2048.example" || fail "default certificate"
pass "SNI localhost (all certificates name it) gets the first (default) certificate"
s_client nothing.example </dev/null | kw_grep "subject=.*CN = rsa2048.example" || fail "unknown name"
pass "SNI for an unknown name gets the default certificate"
out=$(get a.wild.example /wild) || fail "curl a.wild.example (wildcard)"
s_client a.b.wild.example </dev/null | kw_grep "CN = rsa2048.example" || fail "wildcard matched 2 labels"
pass "wildcard *.wild.example serves a.wild.example, not a.b.wild.example"

out=$(get localhost /rsa-kx --tlsv1.2 --tls-max 1.2 --ciphers AES128-GCM-SHA256) ||
    fail "TLS 1.2 RSA key exchange"
pass "TLS 1.2 RSA key exchange (premaster secret decrypted $([ "$MODE" = keyserver ] &&
    echo by the key server || echo locally))"

out=$(get localhost /pp -w '\nlocal_port=%{local_port}\n') || fail "curl for PROXY v2"
port=$(echo "$out" | sed -n 's/^local_port=//p')
grep -q "src=127.0.0.1:$port dst=127.0.0.1:$PP " <<<"$out" ||
    fail "PROXY v2 header has the wrong address (client port $port): $out"
pass "PROXY v2 header carries the client's address 127.0.0.1:$port and the proxy's"

ALPN_OUT=$(s_client localhost -alpn h2,http/1.1 </dev/null)
grep -q "ALPN protocol: http/1.1" <<<"$ALPN_OUT" || fail "ALPN not negotiated"
s_client localhost -alpn h2 </dev/null | kw_grep "no application protocol" ||
    fail "an ALPN offer without a configured protocol should be refused"
pass "ALPN: http/1.1 chosen from h2,http/1.1; h2 alone refused (no_application_protocol)"

size=$(get localhost /bytes/20000000 -o /dev/null -w '%{size_download}') || fail "big download"
[ "$size" = 20000000 ] || fail "20 MB download came out as $size bytes"
pass "20 MB response spliced through intact"

# Resumption needs no key server round trip (checked with the key server down, below).
(printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.5) | s_client localhost -sess_out "$KW_TMP/sess" \
    >"$KW_TMP/s1.out" || true
grep -q "^New," "$KW_TMP/s1.out" || fail "first handshake"
(printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.5) | s_client localhost -sess_in "$KW_TMP/sess" \
    >"$KW_TMP/s2.out" || true
grep -q "^Reused," "$KW_TMP/s2.out" || fail "session ticket not accepted"
pass "session tickets: TLS 1.3 session resumed"

# Backpressure: a client reading at 1 MB/s from a backend that offers 200 MB at once.
if [ "${KW_SANITIZE:-OFF}" != ON ]; then
    rss0=$(awk '/VmRSS/{print $2}' /proc/"$PROXY_PID"/status)
    get localhost /bytes/200000000 --limit-rate 1M -o /dev/null --max-time 3 2>/dev/null || true
    rss1=$(awk '/VmHWM/{print $2}' /proc/"$PROXY_PID"/status)
    [ $((rss1 - rss0)) -lt 16384 ] || fail "proxy grew by $((rss1 - rss0)) KiB behind a slow reader"
    pass "slow reader: proxy memory grew by $((rss1 - rss0)) KiB (peak) while 200 MB were offered"
fi

# Half-close: the client sends, then shuts its sending side (TCP FIN); the echo backend answers
# after EOF; the client must get the echo and a close_notify.
EP=$(free_port)
start_backend echo "$EP" --echo
PE=$(free_port)
ECHO_CERTS=("${CERTS[@]}")
if [ "$MODE" = keyserver ]; then # the key named by an explicit keyward: URI
    id=$(openssl x509 -in "$PKI/certs/rsa2048.crt" -noout -pubkey | openssl pkey -pubin -outform DER |
        sha256sum | cut -d' ' -f1)
    ECHO_CERTS=(--cert "$PKI/certs/rsa2048.crt,keyward:sha256=$id")
fi
start_proxy proxy-echo "$PE" --backend "127.0.0.1:$EP" "${ECHO_CERTS[@]}" "${KEYARGS[@]}" \
    --threads 1
python3 - "$PE" "$PKI/site-ca.crt" <<'PY' || fail "half-close through the proxy"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
sock = socket.create_connection(("127.0.0.1", port), timeout=10)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
def flush():
    data = out.read()
    if data:
        sock.sendall(data)
def fill():
    data = sock.recv(65536)
    inc.write(data) if data else inc.write_eof()
    return data
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        flush()
        fill()
flush()
msg = b"ping through a half-closed tunnel\n" * 1000
tls.write(msg)
flush()
sock.shutdown(socket.SHUT_WR)
got, clean = b"", False
while True:
    try:
        data = tls.read(65536)
        if not data:  # Python reports a received close_notify as b""
            clean = True
            break
        got += data
    except ssl.SSLWantReadError:
        if not fill():
            break
    except ssl.SSLZeroReturnError:
        clean = True
        break
if got != msg or not clean:
    print("half-close: got %d of %d bytes, close_notify=%s" % (len(got), len(msg), clean))
    sys.exit(1)
PY
pass "half-close$([ "$MODE" = keyserver ] && echo " (key by keyward:sha256= URI)"): client FIN reached the backend, its answer and a close_notify came back"

# The same proxy from a YAML file (with a key stub file when the CLI is built).
PY_PORT=$(free_port)
{
    echo "listen: 127.0.0.1:$PY_PORT"
    echo "backend: 127.0.0.1:$BP"
    echo "certs:"
    if [ "$MODE" = keyserver ] && [ -x "$KW_BIN/keyward" ]; then
        "$KW_BIN/keyward" stub --cert "$PKI/certs/ecdsa-p256.crt" --out "$KW_TMP/ecdsa.stub" \
            >/dev/null 2>&1
        echo "  - {cert: $PKI/certs/ecdsa-p256.crt, key: $KW_TMP/ecdsa.stub}"
    elif [ "$MODE" = keyserver ]; then
        echo "  - $PKI/certs/ecdsa-p256.crt"
    else
        echo "  - {cert: $PKI/keys/ecdsa-p256.crt, key: $PKI/keys/ecdsa-p256.key}"
    fi
    if [ "$MODE" = keyserver ]; then
        echo "keyservers: [127.0.0.1:$KS]"
        echo "client_cert: $PKI/edge.crt"
        echo "client_key: $PKI/edge.key"
        echo "ca: $PKI/ca.crt"
        echo "provider: $KW_PROVIDER"
    fi
    echo "proxy_protocol: true"
    echo "alpn: [http/1.1]"
    echo "threads: 1"
} >"$KW_TMP/proxy.yaml"
start_proxy proxy-yaml "$PY_PORT" --config "$KW_TMP/proxy.yaml"
curl -sS --max-time 10 --cacert "$PKI/site-ca.crt" "https://localhost:$PY_PORT/yaml" |
    grep -q "path=/yaml proxy=v2" || fail "proxy configured by YAML"
pass "--config YAML: same options, same result$(grep -q stub "$KW_TMP/proxy.yaml" &&
    echo " (key from a key stub file)")"

# Misconfigurations stop the proxy at start with a sentence, not at the first client.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=orphan \
    -keyout "$KW_TMP/orphan.key" -out "$KW_TMP/orphan.crt" 2>/dev/null
refuse() { # what args...
    local what=$1 rc=0
    shift
    timeout 20 "$KW_BIN/keyward-proxy" --listen "127.0.0.1:$(free_port)" \
        --backend "127.0.0.1:$BP" "$@" >"$KW_TMP/refuse.out" 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "$what: keyward-proxy exited $rc: $(cat "$KW_TMP/refuse.out")"
    pass "refused at start, $what: $(sed -n 's/.*ERROR: //p' "$KW_TMP/refuse.out" | cut -c1-110)"
}
refuse "certificate with another key" --cert "$PKI/keys/rsa2048.crt,$PKI/keys/ecdsa-p256.key"
if [ "$MODE" = keyserver ]; then
    refuse "key on no key server" --cert "$KW_TMP/orphan.crt" "${KEYARGS[@]}"
fi

# Backend down: the backend is connected before the handshake goes on, so the client is closed
# before it (a FIN instead of a ServerHello: curl's TLS connect error, exit 35).
kill "$MAIN_BACKEND_PID"
wait "$MAIN_BACKEND_PID" 2>/dev/null || true
rc=0
get localhost /down >/dev/null 2>&1 || rc=$?
[ "$rc" = 35 ] || fail "backend down: expected curl's TLS connect error exit 35, got $rc"
kill -0 "$MAIN_PROXY_PID" || fail "proxy died with the backend down"
start_backend backend2 "$BP"
get localhost /back >/dev/null || fail "backend back: request failed"
pass "backend down: closed before the handshake (curl exit 35); backend back: served again"

if [ "$MODE" = keyserver ]; then
    kill "$KS_PID"
    wait "$KS_PID" 2>/dev/null || true
    rc=0
    get localhost /ks-down --tlsv1.3 >/dev/null 2>&1 || rc=$?
    [ "$rc" = 35 ] || fail "key server down: expected a handshake failure (curl 35), got $rc"
    kill -0 "$MAIN_PROXY_PID" || fail "proxy died with the key server down"
    pass "key server down: full handshakes fail cleanly (curl exit 35), proxy keeps running"
    # Once the key server has been gone for a while (an outage, not a restart), a handshake fails
    # in about a connection attempt, not after the 5 s key server timeout.
    sleep 2
    t0=$(date +%s%N)
    rc=0
    get localhost /ks-outage --tlsv1.3 >/dev/null 2>&1 || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$rc" = 35 ] || fail "key server outage: expected a handshake failure (curl 35), got $rc"
    [ "$ms" -lt 2000 ] || fail "key server outage: the handshake took $ms ms to fail"
    pass "key server outage: a handshake fails in $ms ms (no wait for the 5 s timeout)"
    (printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.5) | s_client localhost -sess_in "$KW_TMP/sess" \
        >"$KW_TMP/s3.out" || true
    grep -q "^Reused," "$KW_TMP/s3.out" || fail "resumption with the key server down"
    grep -q "kw_backend" "$KW_TMP/s3.out" || fail "no reply on the resumed session"
    pass "key server down: a resumed session (ticket) still works - no key server needed"
    start_keyserver ks2 "$KS"
    ok=0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        if get localhost /ks-back >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.5
    done
    [ "$ok" = 1 ] || fail "key server back: handshakes still failing"
    get ecdsa-p256.example /ks-back2 --tlsv1.2 --tls-max 1.2 >/dev/null || fail "after recovery"
    pass "key server back: handshakes recover"
fi

kill -0 "$MAIN_PROXY_PID" || fail "proxy exited"
kill "$MAIN_PROXY_PID"
wait "$MAIN_PROXY_PID" 2>/dev/null || true
grep -q "stopped:" "$KW_TMP/proxy.log" || fail "proxy did not stop cleanly on SIGTERM"
pass "SIGTERM: $(sed -n 's/.*stopped: //p' "$KW_TMP/proxy.log")"
