#!/bin/bash
# keyward-proxy's PROXY v2 header from a dual-stack [::] listener (issue 14, item 4): an IPv4
# client (seen by the socket as ::ffff:127.0.0.1) must go out as TCP over IPv4 (0x11) with 4-byte
# addresses, an IPv6 client as TCP over IPv6 (0x21). The backend reports the header's bytes; the
# signature, command, family, length and address block are compared byte for byte.
. "$(dirname "$0")/lib.sh"
make_pki
if [ "$(cat /proc/sys/net/ipv6/bindv6only 2>/dev/null || echo 1)" != 0 ] ||
    ! python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    echo "skip: no dual-stack IPv6 loopback here"
    exit 0
fi
BP=$(free_port)
start_backend backend "$BP" --header-hex
proxy_site_keys
PP=$(free_port)
start_bg proxy "$KW_BIN/keyward-proxy" --listen "[::]:$PP" --backend "127.0.0.1:$BP" \
    "${KEYARGS[@]}" --threads 1 --proxy-protocol
PROXY_PID=$LAST_PID
wait_port "$PP" 20 || fail "keyward-proxy did not start on [::]:$PP"

SIG=0d0a0d0a000d0a515549540a
# check IP HOSTPART FAMILY ADDRHEX: one request to IP through the proxy; the header must be
# SIG, 21 (v2 PROXY), FAMILY, a length that matches, ADDRHEX (source and destination addresses),
# then the client's port and the proxy's.
check() {
    local ip=$1 url=$2 fam=$3 addr=$4 out port hdr want body
    out=$(OPENSSL_CONF=/dev/null curl -sS --max-time 15 --cacert "$PKI/site-ca.crt" \
        --resolve "localhost:$PP:$ip" -w '\nlocal_port=%{local_port}\n' "https://localhost:$PP/$url") ||
        fail "curl over $ip: $out"
    port=$(sed -n 's/^local_port=//p' <<<"$out")
    hdr=$(sed -n 's/.* hdr=\([0-9a-f]*\).*/\1/p' <<<"$out")
    [ -n "$hdr" ] || fail "no PROXY header reported for $ip: $out"
    body=$(printf '%04x' $((${#hdr} / 2 - 16)))
    want=$SIG"21"$fam$body$addr$(printf '%04x%04x' "$port" "$PP")
    [ "${hdr:0:${#want}}" = "$want" ] ||
        fail "PROXY v2 header for a client on $ip: got ${hdr:0:${#want}}, want $want"
    pass "client on $ip: PROXY v2 family 0x$fam, header ${hdr:0:${#want}}..."
}
check 127.0.0.1 v4 11 7f0000017f000001
check ::1 v6 21 0000000000000000000000000000000100000000000000000000000000000001
