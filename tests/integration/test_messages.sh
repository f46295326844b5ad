#!/bin/bash
# Error and log messages a newcomer meets (issue 17): a malformed --allow on the key server names
# the option and its syntax; keyward-proxy logs failed client handshakes at WARN, rate-limited,
# and a wrong --client-key is named by that flag.
. "$(dirname "$0")/lib.sh"

W=$KW_TMP/work
mkdir -p "$W"

# ---- a malformed --allow names the option and the EDGE=KEY syntax, both spellings of the flag
for args in "--allow edge=rsa2048" "--allow=edge=rsa2048" "--allow cn:edge"; do
    # shellcheck disable=SC2086 # split on purpose
    expect_fail 2 "for --allow" "$KW_BIN/keyward-keyserver" $args
    for want in "cn:NAME" "san:" "spki:" "=KEY"; do
        grep -q -- "$want" "$W/err" || fail "$args: message lacks '$want': $(cat "$W/err")"
    done
done
pass "malformed --allow: '$(head -n1 "$W/err")'"

# ---- keyward-proxy logs failed client handshakes at WARN, at most one line per second per
# thread, the next line counting the ones left out: a scan cannot flood the log.
make_pki
BP=$(free_port)
start_backend backend "$BP"
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" \
    --cert "$PKI/certs/rsa2048.crt,$PKI/keys/rsa2048.key" --threads 1
# garbage N: N plaintext connections, one after the other, each until the proxy closes it
garbage() {
    python3 - "$PP" "$1" <<'PY' || fail "garbage connections to the proxy"
import socket, sys
for _ in range(int(sys.argv[2])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()
PY
}
t0=$SECONDS
garbage 40
sleep 1.2
garbage 1
most=$((SECONDS - t0 + 2)) # one line a second, plus the first one and a rounding
hs_lines() { grep "handshake with 127.0.0.1" "$KW_TMP/proxy.log"; }
n=0
for _ in $(seq 50); do # the last line is logged once the proxy is done with the connection
    n=$(hs_lines | wc -l)
    hs_lines | tail -n1 | grep -q "more failed handshakes not logged" && break
    sleep 0.1
done
hs_lines | grep -vq " WARN: " && fail "a handshake failure not at WARN: $(hs_lines | grep -v " WARN: ")"
if [ "$n" -lt 2 ] || [ "$n" -gt "$most" ]; then
    fail "$n lines (not 2..$most) for 41 failed handshakes: $(hs_lines)"
fi
unlogged=$(hs_lines | sed -n 's/.*and \([0-9]*\) more failed handshakes not logged.*/\1/p' |
    paste -sd+ | bc)
[ "$((n + unlogged))" = 41 ] || fail "$n lines + $unlogged counted unlogged != 41: $(hs_lines)"
pass "41 failed handshakes: $n WARN lines, $unlogged counted: '$(hs_lines | tail -n1)'"

# ---- keyward-proxy with a wrong --client-key names its own flags, not the provider's
# openssl.cnf settings or variables (which the proxy reads neither of)
KP=$(free_port)
for key in "$PKI/keyserver.key" "$W/nonexistent.key"; do
    expect_fail 1 "--client-key $key" timeout 20 "$KW_BIN/keyward-proxy" \
        --listen "127.0.0.1:$(free_port)" --backend "127.0.0.1:$BP" \
        --cert "$PKI/certs/rsa2048.crt" --keyserver "127.0.0.1:$KP" --client-cert "$PKI/edge.crt" \
        --client-key "$key" --ca "$PKI/ca.crt" --provider "$KW_PROVIDER"
    ! grep -Eq "KEYWARD_CLIENT_KEY|openssl.cnf" "$W/err" ||
        fail "the proxy's message names settings it does not read: $(cat "$W/err")"
done
pass "wrong --client-key: '$(grep -o 'ERROR: .*' "$W/err")'"
