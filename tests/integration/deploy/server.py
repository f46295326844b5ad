# An HTTPS server with Python's ssl module, for test_deploy_node_python.sh: loads CERT and its
# key stub (a private key file to OpenSSL, read through the keyward provider from OPENSSL_CONF),
# listens, then drops privileges to USER and answers "hello python".
# Usage: python3 server.py USER PORT CERT STUB [PORT CERT STUB ...]
import http.server
import os
import pwd
import ssl
import sys
import threading

CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256"


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello python\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(port, cert, stub):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.load_cert_chain(cert, stub)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Hello)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    return httpd


def main():
    user = pwd.getpwnam(sys.argv[1])
    args = sys.argv[2:]
    servers = [serve(*args[i:i + 3]) for i in range(0, len(args), 3)]
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    print(ssl.OPENSSL_VERSION, "serving as", user.pw_name, flush=True)
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


main()
