#!/bin/bash
# keyward-proxy benchmark: full TLS handshakes/s (each with one small HTTP request) and MB/s
# through keyward-proxy, whose keys live on a keyward key server on this machine, against nginx
# holding the same keys in local files; same run, same machine, same client (kw_hsload), same
# backend (kw_backend). Prints a Markdown table with the ratio proxy/nginx.
# Usage: bench/proxy.sh [BUILD_DIR] [SECONDS]   (not a CTest test)
set -euo pipefail
. "$(dirname "$0")/lib-proxy.sh"
bench_init bench/proxy.sh "${1:-}" tests/kw_hsload nginx
SECS=${2:-5}
CPUS=$(nproc)
CONNS=${KW_BENCH_CONNS:-64}
LOADERS=${KW_BENCH_LOADERS:-2}
ROUNDS=${KW_BENCH_ROUNDS:-2} # best of N, alternating which system goes first

BP=$(port); KS=$(port); PP=$(port); NP=$(port)
start_bg backend "$BUILD/tests/kw_backend" --listen "127.0.0.1:$BP"
start_ks "$KS" ks
wait_port "$BP"
start_proxy "$PP" "$BP" --keyserver "127.0.0.1:$KS" \
    --threads "${KW_BENCH_PROXY_THREADS:-$CPUS}" --log-level warn
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
wait_port "$PP"
wait_port "$NP"

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
    if [ "$1" = "$PP" ]; then c0=$(cpu_ticks "$PROXY_PID"); k0=$(cpu_ticks "$KSPID"); else c0=$(cpu_ticks "$NGINX_PID"); fi
    LOAD_OUT=$(load "$@")
    if [ "$1" = "$PP" ]; then
        CPU_P=$((CPU_P + $(cpu_ticks "$PROXY_PID") - c0))
        CPU_K=$((CPU_K + $(cpu_ticks "$KSPID") - k0))
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
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
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
