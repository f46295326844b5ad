#!/usr/bin/env python3
"""kw_hold: opens N mTLS connections to a key server, sends one ping on each (so the server has
read and answered a request, as on a real edge connection), then holds them idle.
  kw_hold.py HOST PORT CERT KEY CA N [--batch 50]
Prints "held N" on stdout once every connection has answered its ping, then sleeps until stdin
closes (the bench script measures the server meanwhile). The client's own memory is not the
subject: it uses SSL_MODE_RELEASE_BUFFERS through Python's defaults and is not measured."""
import selectors
import socket
import ssl
import struct
import sys


def ping_frame(i):
    body = b"\x11\x00\x01\xf1" + b"\x12\x00\x02hi"
    return struct.pack(">BBHI", 1, 0, len(body), i) + body


def main():
    host, port, cert, key, ca, n = sys.argv[1:7]
    port, n = int(port), int(n)
    batch = 50
    if "--batch" in sys.argv:
        batch = int(sys.argv[sys.argv.index("--batch") + 1])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False
    held = []
    sel = selectors.DefaultSelector()
    done = 0
    while done < n:
        pending = {}
        for i in range(min(batch, n - done)):
            s = socket.create_connection((host, port))
            s.setblocking(False)
            t = ctx.wrap_socket(s, server_side=False, do_handshake_on_connect=False)
            pending[t] = "hs"
            sel.register(t, selectors.EVENT_WRITE)
        while pending:
            events = sel.select(timeout=30)
            if not events:
                sys.exit("kw_hold: no progress for 30 s (%d held)" % len(held))
            for k, _ in events:
                t = k.fileobj
                st = pending.get(t)
                try:
                    if st == "hs":
                        t.do_handshake()
                        t.send(ping_frame(done + 1))
                        pending[t] = b""
                        sel.modify(t, selectors.EVENT_READ)
                    else:
                        got = st + t.recv(4096)
                        if len(got) >= 17:
                            del pending[t]
                            sel.unregister(t)
                            held.append(t)
                        else:
                            pending[t] = got
                except ssl.SSLWantReadError:
                    sel.modify(t, selectors.EVENT_READ)
                except ssl.SSLWantWriteError:
                    sel.modify(t, selectors.EVENT_WRITE)
        done = len(held)
    print("held %d" % len(held), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
