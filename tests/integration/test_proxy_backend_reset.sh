#!/bin/bash
# keyward-proxy when the backend fails mid-response (issue 14, item 3): the backend sends 100 KB
# and then resets the connection. The client must be able to tell the response was cut: it gets
# what the backend sent and then the end of the connection *without* close_notify. A backend that
# closes normally still ends with close_notify (control).
. "$(dirname "$0")/lib.sh"
proxy_setup
PP=$(free_port)
start_proxy proxy "$PP" --backend "127.0.0.1:$BP" "${KEYARGS[@]}" --threads 1

# fetch PATH: GET PATH over TLS; prints "bytes=N end=close_notify|eof-without-close_notify|..."
fetch() {
    python3 - "$PP" "$PKI/site-ca.crt" "$1" <<'PY'
import socket, ssl, sys
port, ca, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="localhost", suppress_ragged_eofs=False)
s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" % path).encode())
n, end = 0, "?"
while True:
    try:
        b = s.recv(65536)
    except ssl.SSLEOFError:
        end = "eof-without-close_notify"
        break
    except (ssl.SSLError, OSError) as e:
        end = "error:" + type(e).__name__
        break
    if not b:
        end = "close_notify"
        break
    n += len(b)
print("bytes=%d end=%s" % (n, end))
PY
}
out=$(fetch /bytes/100000)
[[ $out == *"end=close_notify"* ]] || fail "a complete response did not end with close_notify: $out"
pass "complete response: $out"
# Ten times: the reset may reach the proxy after its last read, or with the last data (which
# libuv reports as an end of stream: the proxy must look at the socket's error).
for i in $(seq 1 10); do
    out=$(fetch /reset/100000)
    [[ $out != *"end=close_notify"* ]] ||
        fail "a backend reset looked like a clean end to the client (try $i): $out"
done
pass "backend reset after 100 KB, 10 times: the client sees $out"
kill -0 "$PROXY_PID" || fail "the proxy died"
