#!/bin/bash
# No key server listening at all (never started, or a wrong port): a server that loaded a key stub
# anyway (load_check = auto warns and loads) must fail each handshake fast, with the reason,
# instead of waiting for timeout_ms. Before the fix every handshake but the first waited for the
# next connection attempt of an ever-growing backoff: 2.7-5.05 s with timeout_ms 5000.
. "$(dirname "$0")/lib.sh"
make_pki

DEAD=$(free_port) # nothing listens here
PORT=$(free_port)
write_openssl_conf "$KW_TMP/openssl.cnf" "127.0.0.1:$DEAD"
"$KW_BIN/keyward" stub --cert "$PKI/certs/ecdsa-p256.crt" --out "$KW_TMP/site.stub" >/dev/null ||
    fail "keyward stub"
LD_PRELOAD=$(kw_provider_preload) OPENSSL_CONF=$KW_TMP/openssl.cnf start_bg s_server \
    openssl s_server -accept "$PORT" -cert "$PKI/certs/ecdsa-p256.crt" -key "$KW_TMP/site.stub" -www
wait_port "$PORT" 15 || fail "s_server with a stub and no key server did not start"
grep -q "loading it anyway" "$KW_TMP/s_server.log" || fail "no load-time warning about the key server"

# Handshakes spread over 4 s, so the client's backoff has grown past its first steps.
worst=0
for i in 1 2 3 4 5 6 7 8; do
    t0=$(date +%s%N)
    if kw_https_get "$PORT" >"$KW_TMP/get.out"; then
        fail "handshake $i succeeded with no key server"
    fi
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$ms" -gt "$worst" ] && worst=$ms
    echo "handshake $i failed after $ms ms"
    sleep 0.5
done
[ "$worst" -lt 1000 ] || fail "a handshake with no key server took $worst ms (want < 1000)"
grep -q "Connection refused" "$KW_TMP/s_server.log" || fail "the server's log does not say why"
pass "no key server: every handshake fails within $worst ms, saying 'Connection refused'"

# ---- no key server configured at all: the load-time warning says so, not "key server (none)"
grep -v '^servers' "$KW_TMP/openssl.cnf" >"$KW_TMP/noservers.cnf"
LD_PRELOAD=$(kw_provider_preload) OPENSSL_CONF=$KW_TMP/noservers.cnf \
    openssl pkey -in "$KW_TMP/site.stub" -noout >"$KW_TMP/pkey.out" 2>&1 || true
grep -q "(none)" "$KW_TMP/pkey.out" && fail "the warning names a key server '(none)': $(cat "$KW_TMP/pkey.out")"
grep -q "no key server is configured" "$KW_TMP/pkey.out" && grep -q "KEYWARD_SERVERS" "$KW_TMP/pkey.out" ||
    fail "no servers configured: the warning does not say so: $(cat "$KW_TMP/pkey.out")"
pass "no servers configured: '$(head -c 200 "$KW_TMP/pkey.out")...'"
