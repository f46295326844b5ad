#!/usr/bin/env python3
"""kw_abuse: abusive and measuring clients for the key server's connection tests (issue 20).

  kw_abuse.py dribble  --server H:P --cert C --key K --ca CA [--mode plain|record]
                       [--every-ms 500] [--max-s 8]
      after the mTLS handshake, send a frame header announcing 100 body bytes, then one byte
      every --every-ms (plain: each byte its own TLS record; record: the raw bytes of one TLS
      record carrying the whole partial frame, one byte at a time). Prints "closed after X ms"
      when the server closes, or "open after X ms" when --max-s passes first.
  kw_abuse.py silent   --server H:P --source IP[,IP...] --count N [--hold-s S]
      opens N TCP connections that send nothing (round-robin over the source addresses) and
      holds them; prints "opened N" (then sleeps S seconds; killed by the test).
  kw_abuse.py slowhttp --server H:P --source IP[,IP...] --count N [--every-ms 1000] [--hold-s S]
      N HTTP connections that send a request line, then one header byte each every --every-ms
      (never finishing the request); prints "opened N" and how many the server closed at the end.
  kw_abuse.py latency  --server H:P --cert C --key K --ca CA --digest HEX --opcode 0x15
                       [--count N] [--payload-hex HEX]
      N sequential requests on one connection; prints "p50_us X p90_us Y max_us Z errors E".
Exit status 0 unless setup fails (1).
"""
import argparse
import socket
import ssl
import struct
import sys
import time


def frame(req_id, opcode, digest=None, payload=b""):
    body = bytes([0x11]) + struct.pack(">H", 1) + bytes([opcode])
    if digest is not None:
        body += bytes([0x01]) + struct.pack(">H", len(digest)) + digest
    body += bytes([0x12]) + struct.pack(">H", len(payload)) + payload
    return struct.pack(">BBHI", 1, 0, len(body), req_id) + body


def split_addr(text):
    host, port = text.rsplit(":", 1)
    return host.strip("[]"), int(port)


def client_ctx(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.load_verify_locations(a.ca)
    ctx.check_hostname = False
    return ctx


def tls_connect(a):
    sock = socket.create_connection(split_addr(a.server), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client_ctx(a).wrap_socket(sock)


def wait_closed(sock, seconds):
    """True when the peer closed (EOF or reset) within seconds."""
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except socket.timeout:
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True


def dribble(a):
    partial = struct.pack(">BBHI", 1, 0, 100, 7) + bytes(40)  # header, then 40 of 100 body bytes
    t0 = time.monotonic()
    if a.mode == "plain":
        s = tls_connect(a)
        chunks = [partial[i:i + 1] for i in range(len(partial))]
        send = s.sendall
        raw = s
    else:  # one TLS record with the partial frame, its raw bytes one at a time
        raw = socket.create_connection(split_addr(a.server), timeout=10)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_ctx(a).wrap_bio(inc, out)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(out.read())
                inc.write(raw.recv(65536))
        raw.sendall(out.read())
        obj.write(partial)
        rec = out.read()
        chunks = [rec[i:i + 1] for i in range(len(rec))]
        send = raw.sendall
    t0 = time.monotonic()
    for ch in chunks:
        try:
            send(ch)
        except (ConnectionError, ssl.SSLError, OSError):
            break
        if wait_closed(raw, a.every_ms / 1000.0):
            print("closed after %d ms" % ((time.monotonic() - t0) * 1000))
            return 0
        if time.monotonic() - t0 > a.max_s:
            break
    print("open after %d ms" % ((time.monotonic() - t0) * 1000))
    return 0


def open_from_sources(a, first=b""):
    """a.count connections to a.server, bound in turn to the addresses of a.source, each sending
    first; prints and returns the ones that connected."""
    host, port = split_addr(a.server)
    sources = a.source.split(",")
    socks = []
    for i in range(a.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((sources[i % len(sources)], 0))
        s.settimeout(5)
        try:
            s.connect((host, port))
            if first:
                s.sendall(first)
        except OSError as e:
            print("connect %d failed: %s" % (i, e), file=sys.stderr)
            s.close()
            continue
        socks.append(s)
    print("opened %d" % len(socks), flush=True)
    return socks


def silent(a):
    open_from_sources(a)
    time.sleep(a.hold_s)
    return 0


def slowhttp(a):
    socks = open_from_sources(a, b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    closed = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.hold_s:
        time.sleep(a.every_ms / 1000.0)
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                s.sendall(b"X")
            except OSError:
                closed.add(i)
    print("closed by the server %d" % len(closed), flush=True)
    return 0


def latency(a):
    s = tls_connect(a)
    digest = bytes.fromhex(a.digest)
    payload = bytes.fromhex(a.payload_hex)
    opcode = int(a.opcode, 0)
    lat = []
    errors = 0
    buf = b""
    for i in range(a.count):
        t = time.monotonic()
        s.sendall(frame(i + 1, opcode, digest, payload))
        while True:
            if len(buf) >= 8:
                need = 8 + struct.unpack(">H", buf[2:4])[0]
                if len(buf) >= need:
                    reply, buf = buf[:need], buf[need:]
                    break
            data = s.recv(65536)
            if not data:
                print("closed", file=sys.stderr)
                return 1
            buf += data
        lat.append((time.monotonic() - t) * 1e6)
        if reply[11] == 0xFF:  # opcode item value: an error reply
            errors += 1
        if a.gap_ms > 0:
            time.sleep(a.gap_ms / 1000.0)
    lat.sort()
    pick = lambda q: int(lat[min(len(lat) - 1, int(q * len(lat)))])
    print("p50_us %d p90_us %d max_us %d errors %d" % (pick(0.5), pick(0.9), int(lat[-1]), errors))
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["dribble", "silent", "slowhttp", "latency"])
    p.add_argument("--server", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--mode", default="plain")
    p.add_argument("--every-ms", type=float, default=500)
    p.add_argument("--max-s", type=float, default=8)
    p.add_argument("--source", default="127.0.0.1")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--hold-s", type=float, default=60)
    p.add_argument("--digest")
    p.add_argument("--opcode", default="0x15")
    p.add_argument("--payload-hex", default="00" * 32)
    p.add_argument("--gap-ms", type=float, default=0)
    a = p.parse_args()
    return {"dribble": dribble, "silent": silent, "slowhttp": slowhttp,
            "latency": latency}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
