#!/bin/bash
# The metrics listener (issue 20, finding 9): 64 slow HTTP clients (a request line, then a header
# byte a second, never finishing) from one address must not lock scrapers out (they took every
# connection slot for as long as they dribbled); --metrics-token-file requires
# "Authorization: Bearer TOKEN" (401 without it or with another token).
. "$(dirname "$0")/lib.sh"

make_pki
KS_PORT=$(free_port)
M_PORT=$(free_port)
printf 's3cret-token-%s\n' "$RANDOM" >"$KW_TMP/token"
chmod 600 "$KW_TMP/token"
start_keyserver ks "$KS_PORT" --metrics "127.0.0.1:$M_PORT" --metrics-token-file "$KW_TMP/token"
wait_port "$M_PORT" 10 || fail "metrics port not open"
URL="http://127.0.0.1:$M_PORT/metrics"
TOKEN=$(head -n1 "$KW_TMP/token")

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$URL" || true; }
[ "$(code)" = 401 ] || fail "no token: $(code), not 401"
[ "$(code -H "Authorization: Bearer wrong")" = 401 ] || fail "a wrong token was accepted"
[ "$(code -H "Authorization: Bearer ${TOKEN}x")" = 401 ] || fail "a longer token was accepted"
[ "$(code -H "Authorization: Basic $TOKEN")" = 401 ] || fail "Basic was accepted"
[ "$(code -H "Authorization: Bearer $TOKEN")" = 200 ] || fail "the right token was refused"
curl -s -H "Authorization: Bearer $TOKEN" "$URL" | kw_grep '^keyward_keys_loaded 7$' ||
    fail "no metrics with the token"
pass "--metrics-token-file: 401 without the bearer token or with another, 200 with it"

python3 "$KW_SOURCE_DIR/tests/integration/tools/kw_abuse.py" slowhttp \
    --server "127.0.0.1:$M_PORT" --source 127.0.0.2 --count 64 --every-ms 1000 --hold-s 60 \
    >"$KW_TMP/slow.out" 2>&1 &
KW_PIDS+=("$!")
wait_for_line "$KW_TMP/slow.out" "^opened" "the slow clients did not connect" 20
sleep 1
for i in 1 2 3; do
    t0=$(date +%s%N)
    c=$(code -H "Authorization: Bearer $TOKEN")
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$c" = 200 ] || fail "scrape $i next to 64 slow clients: HTTP '$c' after $ms ms"
    [ "$ms" -lt 2000 ] || fail "scrape $i took $ms ms next to 64 slow clients"
    sleep 1
done
pass "three scrapes next to 64 slow clients from one address: 200 in under 2 s each"
