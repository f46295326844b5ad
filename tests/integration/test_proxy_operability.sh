#!/bin/bash
# keyward-proxy as an operator runs it (issue 18):
#   --check-config: 0 and what would run for a good configuration; 1 and the reason for a missing
#     file, a client key readable by every user, a key the key server does not hold, a bad flag;
#   --metrics: /health, and /metrics with handshakes by result, version and key type, resumed vs
#     full, the key-operation latency histogram, waiting handshakes, connections, backend
#     failures, certificate expiry;
#   SIGHUP: a new certificate is served to new handshakes while an open tunnel goes on; a reload
#     that fails (a missing file) keeps serving the previous certificates and logs why.
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || fail "needs the provider and the key server built"

KS=$(free_port)
start_keyserver ks "$KS"
BP=$(free_port)
start_backend backend "$BP" --echo
KSARGS=$(proxy_ks_args "$KS")

# ---- --check-config ----
# shellcheck disable=SC2086
out=$("$KW_BIN/keyward-proxy" --check-config --cert "$PKI/certs/ecdsa-p256.crt" \
    --backend "127.0.0.1:$BP" $KSARGS 2>&1) || fail "--check-config of a good configuration: $out"
grep -q 'CN=ecdsa-p256.example, valid until .*key keyward:sha256=' <<<"$out" ||
    fail "--check-config does not say what it would serve: $out"
grep -q 'configuration is ok' <<<"$out" || fail "--check-config does not say ok: $out"
pass "--check-config: exit 0, prints the certificate, key and key server"

check_fails() { check_config_fails "$KW_BIN/keyward-proxy" "$@"; } # WHAT PATTERN ARGS...
# shellcheck disable=SC2086
check_fails "a missing certificate" "$PKI/certs/none.crt: No such file" \
    --cert "$PKI/certs/none.crt" --backend "127.0.0.1:$BP" $KSARGS
cp "$PKI/edge.key" "$KW_TMP/open.key"
chmod 644 "$KW_TMP/open.key"
check_fails "a client key readable by everyone" "open.key is readable by every user" \
    --cert "$PKI/certs/ecdsa-p256.crt" --backend "127.0.0.1:$BP" --keyserver "127.0.0.1:$KS" \
    --client-cert "$PKI/edge.crt" --client-key "$KW_TMP/open.key" --ca "$PKI/ca.crt"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stranger \
    -keyout "$KW_TMP/stranger.key" -out "$KW_TMP/stranger.crt" -days 2 2>/dev/null
# shellcheck disable=SC2086
check_fails "a key the key server lacks" "not found" \
    --cert "$KW_TMP/stranger.crt" --backend "127.0.0.1:$BP" $KSARGS
check_fails "an unknown flag" "unknown option" --cert "$PKI/certs/ecdsa-p256.crt" --bogus

# ---- --metrics and /health ----
# The proxy reaches the key server through a relay that delays its answers 30 ms, so every key
# operation pauses its handshake for a known time (the histogram's lower buckets stay empty).
RELAY=$(free_port)
start_bg relay "$KW_TESTS/kw_delay_relay" --listen "127.0.0.1:$RELAY" --upstream "127.0.0.1:$KS" \
    --delay-ms 30
wait_port "$RELAY" 10 || fail "kw_delay_relay did not start"
PP=$(free_port)
MP=$(free_port)
write_proxy_yaml "$KW_TMP/proxy.yaml" "127.0.0.1:$PP" "127.0.0.1:$BP" "$PKI/certs/ecdsa-p256.crt" \
    "127.0.0.1:$RELAY" "metrics: \"127.0.0.1:$MP\"
threads: 2"
start_proxy proxy "$PP" --config "$KW_TMP/proxy.yaml"
PROXY=$PROXY_PID
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$MP/health")
[ "$code" = 200 ] || fail "/health answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$MP/nothing")
[ "$code" = 404 ] || fail "/nothing answered $code, not 404"
pass "--metrics: /health 200, other paths 404"

for v in 1.2 1.3; do
    printf 'hello %s\n' "$v" | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -quiet \
        -connect "127.0.0.1:$PP" -servername localhost -CAfile "$PKI/site-ca.crt" \
        -verify_return_error -tls${v/./_} -sess_out "$KW_TMP/sess$v" >"$KW_TMP/echo$v" 2>&1 || true
    grep -q "hello $v" "$KW_TMP/echo$v" || fail "TLS $v echo through the proxy: $(cat "$KW_TMP/echo$v")"
done
# the TLS 1.2 session again: resumed, no key operation
printf 'again\n' | OPENSSL_CONF=/dev/null timeout 10 openssl s_client -quiet -connect "127.0.0.1:$PP" \
    -servername localhost -CAfile "$PKI/site-ca.crt" -tls1_2 -sess_in "$KW_TMP/sess1.2" \
    >"$KW_TMP/again" 2>&1 || true
grep -q again "$KW_TMP/again" || fail "resumed TLS 1.2 echo: $(cat "$KW_TMP/again")"
# a handshake that fails: TLS 1.1 only
OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$PP" -tls1_1 </dev/null \
    >/dev/null 2>&1 || true
sleep 0.3
curl -s --max-time 5 "http://127.0.0.1:$MP/metrics" >"$KW_TMP/metrics"
metric() { # NAME{labels} -> value (0 when absent)
    awk -v m="$1" '$1 == m {print $2; f=1} END {if (!f) print 0}' "$KW_TMP/metrics"
}
for want in 'keyward_proxy_handshakes_total{result="ok",version="TLSv1.2",key_type="ec"}' \
    'keyward_proxy_handshakes_total{result="ok",version="TLSv1.3",key_type="ec"}' \
    'keyward_proxy_handshakes_mode_total{mode="resumed"}' \
    'keyward_proxy_handshakes_mode_total{mode="full"}' \
    'keyward_proxy_key_operation_seconds_count' 'keyward_proxy_connections_total'; do
    v=$(metric "$want")
    [ "${v%.*}" -ge 1 ] || fail "metric $want is $v, expected at least 1: $(grep -v '^#' "$KW_TMP/metrics")"
done
failed=$(grep -E '^keyward_proxy_handshakes_total\{result="failed"' "$KW_TMP/metrics" | awk '{s+=$2} END {print s+0}')
[ "$failed" -ge 1 ] || fail "the failed TLS 1.1 handshake is not counted: $(grep handshakes_total "$KW_TMP/metrics")"
for name in keyward_proxy_handshakes_waiting keyward_proxy_connections \
    keyward_proxy_backend_failures_total 'keyward_proxy_key_operation_seconds_bucket{le="+Inf"}'; do
    grep -q "^$name " "$KW_TMP/metrics" || fail "no $name in /metrics"
done
ops=$(metric keyward_proxy_key_operation_seconds_count)
fast=$(metric 'keyward_proxy_key_operation_seconds_bucket{le="0.025"}')
[ "$fast" = 0 ] || fail "$fast of $ops key operations took under 25 ms through a 30 ms relay"
exp=$(openssl x509 -in "$PKI/certs/ecdsa-p256.crt" -noout -enddate | cut -d= -f2)
want=$(date -u -d "$exp" +%s)
got=$(metric 'keyward_proxy_certificate_expiry_timestamp_seconds{index="1",subject="ecdsa-p256.example"}')
[ "$got" = "$want" ] || fail "certificate expiry metric $got, notAfter is $want"
pass "/metrics: handshakes by result/version/key type, resumed $(metric 'keyward_proxy_handshakes_mode_total{mode="resumed"}'), key operations $(metric keyward_proxy_key_operation_seconds_count), failed $failed, certificate expiry"

# ---- SIGHUP: a new certificate for new handshakes, the open tunnel goes on ----
coproc TUNNEL { OPENSSL_CONF=/dev/null timeout 60 openssl s_client -quiet -connect "127.0.0.1:$PP" \
    -servername localhost -CAfile "$PKI/site-ca.crt" 2>/dev/null; }
echo before >&"${TUNNEL[1]}"
read -r -t 10 line <&"${TUNNEL[0]}" || fail "no echo through the open tunnel"
[ "$line" = before ] || fail "open tunnel echoed '$line'"
subject() {
    OPENSSL_CONF=/dev/null timeout 10 openssl s_client -connect "127.0.0.1:$PP" -servername localhost \
        </dev/null 2>/dev/null | sed -n 's/^subject=.*CN = //p'
}
[ "$(subject)" = ecdsa-p256.example ] || fail "before the reload the proxy serves $(subject)"
sed -i "s|^certs: .*|certs: [\"$PKI/certs/rsa2048.crt\"]|" "$KW_TMP/proxy.yaml"
kill -HUP "$PROXY"
wait_for_line "$KW_TMP/proxy.log" 'reloaded: 1 certificate' "no 'reloaded' line after SIGHUP" 20
[ "$(subject)" = rsa2048.example ] || fail "after the reload the proxy serves $(subject)"
echo after >&"${TUNNEL[1]}"
read -r -t 10 line <&"${TUNNEL[0]}" || fail "the open tunnel was dropped by the reload"
[ "$line" = after ] || fail "open tunnel echoed '$line' after the reload"
kill -0 "$PROXY" || fail "the proxy died on SIGHUP"
pass "SIGHUP: new handshakes get the new certificate (rsa2048), the open tunnel goes on"

sed -i "s|^certs: .*|certs: [\"$PKI/certs/gone.crt\"]|" "$KW_TMP/proxy.yaml"
kill -HUP "$PROXY"
wait_for_line "$KW_TMP/proxy.log" 'reload failed, still serving the previous configuration: .*gone.crt' \
    "no 'reload failed' line naming the missing file" 20
[ "$(subject)" = rsa2048.example ] || fail "after a failed reload the proxy serves $(subject)"
echo still >&"${TUNNEL[1]}"
read -r -t 10 line <&"${TUNNEL[0]}" || fail "the open tunnel was dropped by the failed reload"
curl -s --max-time 5 "http://127.0.0.1:$MP/metrics" >"$KW_TMP/metrics"
[ "$(metric 'keyward_proxy_reloads_total{result="ok"}')" = 1 ] &&
    [ "$(metric 'keyward_proxy_reloads_total{result="failed"}')" = 1 ] ||
    fail "reload counters: $(grep reloads_total "$KW_TMP/metrics")"
pass "a failed reload keeps the previous certificates, logs '$(grep -o 'reload failed.*' "$KW_TMP/proxy.log" | head -1 | cut -c1-110)'"
exec {TUNNEL[1]}>&-
