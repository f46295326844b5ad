#!/bin/bash
# Syscalls per key operation on the edge (issue 16, item 1): `strace -c -f` of one nginx worker
# serving full TLS 1.3 handshakes with the key on a keyward key server (stub + provider), next to
# the same nginx with the key on disk, and of `keyward ping --count N`. The difference between the
# two nginx columns is what the provider and the client cost per handshake in system calls.
# Usage: bench/syscalls.sh [BUILD_DIR]   (env: HANDSHAKES (default 1000), KEY (ecdsa-p256))
# Prints three tables (calls per handshake / per ping, by syscall); strace slows everything, so
# only the counts mean something, not the times. One h2load client, so the handshakes come one at
# a time and nginx's own calls per handshake do not depend on how the load happens to batch.
set -euo pipefail
KW_SOURCE_DIR=$(cd "$(dirname "$0")/.." && pwd)
KW_BUILD_DIR=$(cd "${1:-$KW_SOURCE_DIR/build}" && pwd)
export KW_SOURCE_DIR KW_BUILD_DIR
. "$KW_SOURCE_DIR/tests/integration/lib.sh"

HANDSHAKES=${HANDSHAKES:-1000}
KEY=${KEY:-ecdsa-p256}
for tool in nginx h2load strace; do
    command -v $tool >/dev/null || fail "$tool is not installed"
done
[ -f "$KW_PROVIDER" ] || fail "no provider at $KW_PROVIDER: build first"

make_pki
KS_PORT=$(free_port)
start_keyserver ks "$KS_PORT" --log-level warn
write_openssl_conf "$KW_TMP/prov.cnf" "127.0.0.1:$KS_PORT"
"$KW_BIN/keyward" stub --cert "$PKI/certs/$KEY.crt" --out "$KW_TMP/$KEY.stub" 2>/dev/null

# per_op FILE N: strace -c's table as "| syscall | calls per operation |", most frequent first.
per_op() {
    awk -v n="$2" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {
        name = $NF; calls = $4; if (calls ~ /^[0-9]+$/) printf "%s %.2f\n", name, calls / n }' "$1" |
        sort -k2 -nr | awk '$2 >= 0.01 {printf "| `%s` | %s |\n", $1, $2; total += $2}
        END {printf "| **total** | **%.2f** |\n", total}'
}

# client_ops RAW N: the calls of the keyward client itself per operation: those on its socket to the
# key server (strace -yy names it by the key server's port), on its own epoll fd (not the one
# nginx adds its connections to), on eventfds, and futex (a contended lock).
client_ops() {
    python3 - "$1" "$2" "$KS_PORT" <<'PY'
import collections, re, sys
path, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
call = re.compile(r"^\d+\s+(\w+)\((\d+)<(.*?)>[,)]")
lines = open(path).read().splitlines()
nginx_ep = {m.group(2) for m in map(call.match, lines) if m and m.group(1) == "epoll_ctl"}
count = collections.Counter()
for line in lines:
    m = call.match(line)
    if m is None:
        if re.match(r"^\d+\s+futex\(", line):
            count["futex"] += 1
        continue
    name, fd, what = m.groups()
    if (":%s]" % port) in what or "eventfd" in what or (
            name == "epoll_wait" and "eventpoll" in what and fd not in nginx_ep):
        count[name] += 1
total = 0.0
for name, c in count.most_common():
    print("| `%s` | %.2f |" % (name, c / n))
    total += c / n
print("| **total** | **%.2f** |" % total)
PY
}

# per_op_raw RAW N: every call of the traced process per operation, most frequent first.
per_op_raw() {
    sed -n 's/^[0-9]*  *\([a-z_0-9]*\)(.*/\1/p' "$1" | sort | uniq -c | sort -nr |
        awk -v n="$2" '{v = $1 / n; if (v >= 0.01) printf "| `%s` | %.2f |\n", $2, v; t += v}
        END {printf "| **total** | **%.2f** |\n", t}'
}

# handshakes NAME CERT KEYFILE OPENSSL_CONF: one nginx worker, HANDSHAKES full handshakes traced.
handshakes() {
    local name=$1 port dir=$KW_TMP/$1
    port=$(free_port)
    write_nginx_conf "$dir" 1 "$dir/error.log" "    keepalive_timeout 0;
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $2;
        ssl_certificate_key $3;
        ssl_protocols TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / { return 200 \"ok\n\"; }
    }" warn
    start_bg "nginx-$name" env OPENSSL_CONF="$4" nginx -p "$dir" -c "$dir/nginx.conf" -e stderr
    local master=$LAST_PID worker=""
    wait_port "$port" 15 || fail "nginx ($name) did not start"
    h2load --h1 -n 200 -c 4 -t 1 "https://127.0.0.1:$port/" >/dev/null 2>&1 # warm-up
    for _ in $(seq 50); do
        worker=$(pgrep -P "$master" | head -1 || true)
        [ -n "$worker" ] && break
        sleep 0.1
    done
    [ -n "$worker" ] || fail "no nginx worker ($name)"
    strace -f -yy -p "$worker" -o "$KW_TMP/strace-$name.raw" &
    local st=$!
    sleep 1
    h2load --h1 -n "$HANDSHAKES" -c 1 -t 1 "https://127.0.0.1:$port/" >"$KW_TMP/h2load-$name.out" 2>&1 ||
        fail "h2load ($name): $(cat "$KW_TMP/h2load-$name.out")"
    grep -q "succeeded, 0 failed" "$KW_TMP/h2load-$name.out" || fail "h2load ($name) had failures"
    kill -INT "$st"
    wait "$st" 2>/dev/null || true
    kill "$master" 2>/dev/null || true
    wait "$master" 2>/dev/null || true
}

handshakes disk "$PKI/keys/$KEY.crt" "$PKI/keys/$KEY.key" /dev/null
handshakes keyward "$PKI/certs/$KEY.crt" "$KW_TMP/$KEY.stub" "$KW_TMP/prov.cnf"

PINGS=1000
strace -c -f -o "$KW_TMP/strace-ping.txt" "$KW_BIN/keyward" ping --count $PINGS \
    --server "127.0.0.1:$KS_PORT" --cert "$PKI/edge.crt" --key "$PKI/edge.key" \
    --ca "$PKI/ca.crt" >/dev/null || fail "keyward ping failed"

echo "### nginx worker, key on disk: syscalls per handshake ($KEY, TLS 1.3, $HANDSHAKES handshakes)"
echo
echo "| syscall | calls per handshake |"
echo "|---|---|"
per_op_raw "$KW_TMP/strace-disk.raw" "$HANDSHAKES"
echo
echo "### nginx worker, keyward provider: syscalls per handshake ($KEY, TLS 1.3, $HANDSHAKES handshakes)"
echo
echo "| syscall | calls per handshake |"
echo "|---|---|"
per_op_raw "$KW_TMP/strace-keyward.raw" "$HANDSHAKES"
echo
echo "### of which the keyward client's own: socket to the key server, its epoll, eventfds, futex"
echo
echo "| syscall | calls per handshake |"
echo "|---|---|"
client_ops "$KW_TMP/strace-keyward.raw" "$HANDSHAKES"
echo
echo "### keyward ping --count $PINGS: syscalls per ping (the whole process, connect included)"
echo
echo "| syscall | calls per ping |"
echo "|---|---|"
per_op "$KW_TMP/strace-ping.txt" "$PINGS"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
