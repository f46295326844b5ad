#!/bin/bash
# keyward-proxy benchmark: full TLS handshakes/s (each with one small HTTP request) and MB/s
# through keyward-proxy, whose keys live on a keyward key server on this machine, against nginx
# holding the same keys in local files; same run, same machine, same client (kw_hsload), same
# backend (kw_backend). Prints a Markdown table with the ratio proxy/nginx.
# Then the same job done by nginx's stream module (libnginx-mod-stream): TLS terminated with the
# key on disk, plaintext TCP to the same kw_backend; daemonised, `user www-data` when root, one
# worker per CPU. Full TLS 1.3 handshakes/s, a new connection per request (kw_backend closes
# after each reply), RSA-2048 and ECDSA P-256, best of STREAM_ROUNDS alternating rounds, with
# h2load --h1 (an independent load generator) when installed, else kw_hsload.
# Usage: bench/proxy.sh [BUILD_DIR] [SECONDS]   (not a CTest test)
#   env: KW_BENCH_CONNS, KW_BENCH_LOADERS, KW_BENCH_ROUNDS, KW_BENCH_PROXY_THREADS;
#   STREAM_ONLY=1 (only the stream comparison), STREAM_KEYS (keys of the stream comparison,
#   default "ecdsa-p256 rsa2048"), STREAM_ROUNDS (3), REQUESTS (3000), CLIENTS (32),
#   STREAM_TOOL=kw_hsload (the stream comparison with kw_hsload even when h2load is installed)
set -euo pipefail
. "$(dirname "$0")/lib-proxy.sh"
bench_init bench/proxy.sh "${1:-}" tests/kw_hsload nginx
SECS=${2:-5}
STREAM_ONLY=${STREAM_ONLY:-0}
STREAM_ROUNDS=${STREAM_ROUNDS:-3}
REQUESTS=${REQUESTS:-3000}
CLIENTS=${CLIENTS:-32}
STREAM_MODULE=${STREAM_MODULE:-/usr/lib/nginx/modules/ngx_stream_module.so}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CPUS=$(nproc)
CONNS=${KW_BENCH_CONNS:-64}
LOADERS=${KW_BENCH_LOADERS:-2}
ROUNDS=${KW_BENCH_ROUNDS:-2} # best of N, alternating which system goes first

BP=$(port); KS=$(port); PP=$(port); NP=$(port); SP_RSA=$(port); SP_EC=$(port); MP=$(port)
start_bg backend "$BUILD/tests/kw_backend" --listen "127.0.0.1:$BP"
start_ks "$KS" ks
wait_port "$BP"
# Full handshakes only: kw_hsload never resumes, but h2load offers the ticket of the connection
# before; keyward-proxy has no option against tickets, so OpenSSL's system_default section turns
# them off for it (nginx: ssl_session_tickets off). The proxy's metrics count resumptions.
cat >"$TMP/no-tickets.cnf" <<'CNF'
openssl_conf = init
[init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Options = -SessionTicket
NumTickets = 0
CNF
OPENSSL_CONF=$TMP/no-tickets.cnf start_proxy "$PP" "$BP" --keyserver "127.0.0.1:$KS" \
    --threads "${KW_BENCH_PROXY_THREADS:-$CPUS}" --log-level warn --metrics "127.0.0.1:$MP"
mkdir -p "$TMP/nginx"
site() { # name
    cat <<SITE
    server {
        listen 127.0.0.1:$NP ssl;
        server_name $1.example localhost;
        ssl_certificate $PKI/keys/$1.crt;
        ssl_certificate_key $PKI/keys/$1.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://127.0.0.1:$BP;
            proxy_buffers 8 64k; proxy_buffer_size 64k; proxy_max_temp_file_size 0;
        }
    }
SITE
}
{
    [ "$(id -u)" = 0 ] && echo "user root;"
    echo "worker_processes $CPUS; daemon off; pid $TMP/nginx/nginx.pid;"
    echo "error_log $TMP/nginx/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; client_body_temp_path $TMP/nginx; proxy_temp_path $TMP/nginx;"
    echo "  fastcgi_temp_path $TMP/nginx; uwsgi_temp_path $TMP/nginx; scgi_temp_path $TMP/nginx;"
    site rsa2048
    site ecdsa-p256
    echo "}"
} >"$TMP/nginx/nginx.conf"
start_bg nginx nginx -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
NGINX_PID=$BG_PID

# nginx stream, key on disk, run as deployed: daemonised (the master forks; its pid is read from
# the pid file), workers as www-data when we are root (the keys are made readable to them).
[ -f "$STREAM_MODULE" ] || { echo "bench/proxy.sh: no $STREAM_MODULE (libnginx-mod-stream)" >&2; exit 1; }
mkdir -p "$TMP/stream"
stream_site() { # name port
    cat <<SITE
    server {
        listen 127.0.0.1:$2 ssl;
        ssl_certificate $PKI/keys/$1.crt;
        ssl_certificate_key $PKI/keys/$1.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        proxy_pass 127.0.0.1:$BP;
    }
SITE
}
{
    echo "load_module $STREAM_MODULE;"
    if [ "$(id -u)" = 0 ]; then
        echo "user www-data;"
        chmod 755 "$TMP" "$PKI" "$PKI/keys"
        chmod 644 "$PKI"/keys/*
    fi
    echo "worker_processes $CPUS; daemon on; pid $TMP/stream/nginx.pid;"
    echo "error_log $TMP/stream/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "stream {"
    stream_site rsa2048 "$SP_RSA"
    stream_site ecdsa-p256 "$SP_EC"
    echo "}"
} >"$TMP/stream/nginx.conf"
nginx -c "$TMP/stream/nginx.conf" -e "$TMP/stream/error.log" ||
    { echo "bench/proxy.sh: nginx stream did not start: $(cat "$TMP/stream/error.log")" >&2; exit 1; }
for _ in $(seq 50); do [ -s "$TMP/stream/nginx.pid" ] && break; sleep 0.1; done
STREAM_PID=$(cat "$TMP/stream/nginx.pid")
PIDS+=("$STREAM_PID") # bench_cleanup stops it (a daemon: not our child, so no wait)
wait_port "$PP"
wait_port "$NP"
wait_port "$SP_RSA"
wait_port "$SP_EC"

. "$(dirname "$0")/lib-cpu.sh" # cpu_ticks

# load PORT NAME TLS [args]: LOADERS parallel kw_hsload; prints the summed handshakes/s and MB/s.
load() {
    local p=$1 name=$2 tls=$3 i pids=()
    shift 3
    for i in $(seq "$LOADERS"); do
        "$BUILD/tests/kw_hsload" --connect "127.0.0.1:$p" --ca "$PKI/site-ca.crt" \
            --servername "$name" --tls "$tls" --conns "$CONNS" --seconds "$SECS" --path / \
            --max-fail 1000000 "$@" >"$TMP/load.$i" &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    # "hsload: N ok, F failed in S s: R handshakes/s, M MB/s, ..."
    cat "$TMP"/load.* | awk '{ hs += $9; mb += $11 } END { printf "%.0f %.1f\n", hs, mb }'
    cat "$TMP"/load.* | awk '{ n += $2 } END { print n }' >"$TMP/handshakes"
    rm -f "$TMP"/load.*
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
if [ "$STREAM_ONLY" != 1 ]; then
# A warm-up so the proxy's key-server connections and nginx's workers are ready.
load "$PP" ecdsa-p256.example 1.3 --seconds 1 >/dev/null
load "$NP" ecdsa-p256.example 1.3 --seconds 1 >/dev/null

echo "keyward-proxy (keys on a key server) vs nginx (local key files); $CPUS CPUs:"
echo "$(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
echo "$(openssl version); $LOADERS x kw_hsload, $CONNS connections each, best of $ROUNDS x ${SECS} s."
echo
echo "| workload | keyward-proxy | nginx local key | ratio | CPU per handshake: proxy + key server / nginx |"
echo "|---|---:|---:|---:|---|"
row() { # label unit proxy nginx [cpu]
    awk -v l="$1" -v u="$2" -v a="$3" -v b="$4" -v c="${5:--}" \
        'BEGIN { printf "| %s | %s %s | %s %s | %.2f | %s |\n", l, a, u, b, u, (b > 0 ? a / b : 0), c }'
}
# CPU µs per handshake over all rounds (10 ms ticks), summed per system by timed_load.
CPU_P=0 CPU_K=0 CPU_N=0 HS_P=0 HS_N=0
timed_load() { # PORT args...: load into LOAD_OUT, adding the CPU and handshakes of that system
    local c0 k0
    if [ "$1" = "$PP" ]; then c0=$(cpu_ticks "$PROXY_PID"); k0=$(cpu_ticks "$KS_PID"); else c0=$(cpu_ticks "$NGINX_PID"); fi
    LOAD_OUT=$(load "$@")
    if [ "$1" = "$PP" ]; then
        CPU_P=$((CPU_P + $(cpu_ticks "$PROXY_PID") - c0))
        CPU_K=$((CPU_K + $(cpu_ticks "$KS_PID") - k0))
        HS_P=$((HS_P + $(cat "$TMP/handshakes")))
    else
        CPU_N=$((CPU_N + $(cpu_ticks "$NGINX_PID") - c0))
        HS_N=$((HS_N + $(cat "$TMP/handshakes")))
    fi
}
cpu_cell() { # "P + K / N µs" for the rounds since the last reset
    awk -v p="$CPU_P" -v k="$CPU_K" -v n="$CPU_N" -v hp="$HS_P" -v hn="$HS_N" \
        'BEGIN { printf "%d + %d / %d µs", p * 10000 / hp, k * 10000 / hp, n * 10000 / hn }'
}
# measure FIELD NAME TLS [args]: best of ROUNDS for both systems; sets P and N.
measure() {
    local field=$1 r first second
    shift
    P=0
    N=0
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            timed_load "$PP" "$@"
            first=$(cut -d' ' -f"$field" <<<"$LOAD_OUT")
            timed_load "$NP" "$@"
            second=$(cut -d' ' -f"$field" <<<"$LOAD_OUT")
            P=$(max "$P" "$first")
            N=$(max "$N" "$second")
        else
            timed_load "$NP" "$@"
            first=$(cut -d' ' -f"$field" <<<"$LOAD_OUT")
            timed_load "$PP" "$@"
            second=$(cut -d' ' -f"$field" <<<"$LOAD_OUT")
            N=$(max "$N" "$first")
            P=$(max "$P" "$second")
        fi
    done
}
for spec in "ecdsa-p256.example 1.3 ECDSA P-256, TLS 1.3" "rsa2048.example 1.3 RSA 2048, TLS 1.3" \
    "rsa2048.example 1.2 RSA 2048, TLS 1.2 ECDHE"; do
    read -r name tls label <<<"$spec"
    CPU_P=0 CPU_K=0 CPU_N=0 HS_P=0 HS_N=0
    measure 1 "$name" "$tls"
    row "full handshakes/s + 1 request, $label" "hs/s" "$P" "$N" "$(cpu_cell)"
done
CONNS=2
measure 2 ecdsa-p256.example 1.3 --path /bytes/200000000
row "throughput, $((2 * LOADERS)) streams of 200 MB responses" "MB/s" "$P" "$N"
fi

# --- keyward-proxy against nginx stream (key on disk) ---
# srate PORT NAME: full TLS 1.3 handshakes/s (one request per connection) with h2load --h1,
# connecting to 127.0.0.1:PORT with SNI NAME; kw_hsload (all LOADERS) when h2load is missing.
srate() {
    local out
    if [ "$USE_H2LOAD" = 1 ]; then
        out=$(h2load --h1 -n "$REQUESTS" -c "$CLIENTS" -t 1 --connect-to "127.0.0.1:$1" \
            "https://$2:$1/" 2>&1) || { echo "bench/proxy.sh: h2load against $2:$1: $out" >&2; exit 1; }
        grep -q "succeeded, 0 failed" <<<"$out" ||
            { echo "bench/proxy.sh: h2load against $2:$1 had failures: $out" >&2; exit 1; }
        grep -q "^TLS Protocol: TLSv1.3" <<<"$out" ||
            { echo "bench/proxy.sh: h2load against $2:$1 did not get TLS 1.3: $out" >&2; exit 1; }
        sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out"
    else
        load "$1" "$2" 1.3 | cut -d' ' -f1
    fi
}
USE_H2LOAD=0
if [ "${STREAM_TOOL:-h2load}" = h2load ] && command -v h2load >/dev/null; then
    USE_H2LOAD=1
    STREAM_TOOL="h2load --h1 -n $REQUESTS -c $CLIENTS -t 1"
else
    STREAM_TOOL="$LOADERS x kw_hsload, $CONNS connections each, ${SECS} s"
fi
echo
echo "keyward-proxy (keys on a key server) vs nginx stream (ssl_certificate_key on disk, proxy_pass"
echo "to the same kw_backend); $CPUS CPUs; full TLS 1.3 handshakes, one request per connection;"
echo "$STREAM_TOOL; best of $STREAM_ROUNDS alternating rounds."
echo
echo "| key | keyward-proxy (hs/s) | nginx stream, key on disk (hs/s) | ratio | median of per-round ratios | target |"
echo "|---|---:|---:|---:|---:|---|"
for key in ${STREAM_KEYS:-ecdsa-p256 rsa2048}; do
    sp=$SP_EC
    [ "$key" = rsa2048 ] && sp=$SP_RSA
    srate "$PP" "$key.example" >/dev/null # warm-up
    srate "$sp" "$key.example" >/dev/null
    bp=0 bs=0 ratios=""
    for r in $(seq "$STREAM_ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            p=$(srate "$PP" "$key.example")
            n=$(srate "$sp" "$key.example")
        else
            n=$(srate "$sp" "$key.example")
            p=$(srate "$PP" "$key.example")
        fi
        echo "  $key round $r: keyward-proxy $p/s, nginx stream $n/s" >&2
        ratios="$ratios $(awk -v a="$p" -v b="$n" 'BEGIN { printf "%.3f", a / b }')"
        bp=$(max "$bp" "$p")
        bs=$(max "$bs" "$n")
    done
    median=$(tr ' ' '\n' <<<"${ratios# }" | sort -n |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    awk -v k="$key" -v a="$bp" -v b="$bs" -v m="$median" \
        'BEGIN { printf "| %s | %.0f | %.0f | %.2f | %.2f | ≥ 1.2 |\n", k, a, b, a / b, m }'
done
# Every handshake must have been a full one: nginx stream has no session cache nor tickets, the
# proxy's own counters say whether a client resumed.
modes=$(curl -s "http://127.0.0.1:$MP/metrics" | sed -n 's/^keyward_proxy_handshakes_mode_total{mode="\([a-z]*\)"} \([0-9]*\)$/\2 \1/p' | paste -sd, -)
by_key=$(curl -s "http://127.0.0.1:$MP/metrics" | awk '/^keyward_proxy_handshakes_total/ && $2 > 0' |
    sed 's/^keyward_proxy_handshakes_total//' | paste -sd' ' -)
echo
echo "keyward-proxy handshakes over the whole run: ${modes:-unknown}; ${by_key:-}."
echo "Load average $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(date -u '+%Y-%m-%d %H:%M UTC')."
