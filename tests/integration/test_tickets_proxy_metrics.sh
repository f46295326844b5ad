#!/bin/bash
# keyward-proxy --tickets-from-keyserver on /metrics: after the first fetch one ok fetch, none
# failed, fleet keys in use, the last fetch's time now and an age of a few seconds; with 2-second
# epochs the refetches count; once the key server is gone failed fetches count, the age grows
# and, when the last fetched key has ended, the fleet gauge drops to 0 (a local random key). A
# proxy without the option has none of these metrics.
. "$(dirname "$0")/lib.sh"
proxy_remote_setup
W=$KW_TMP/w
mkdir -p "$W"
head -c 32 /dev/urandom >"$W/secret"
chmod 600 "$W/secret"

KS=$(free_port)
start_keyserver ks "$KS" --ticket-secret "$W/secret" --ticket-rotation-s 2 \
    --allow "cn:edge=*,tickets"
# shellcheck disable=SC2207
KEYARGS=($(proxy_ks_args "$KS"))
P=$(free_port)
M=$(free_port)
start_proxy edge "$P" --backend "127.0.0.1:$BP" --cert "$PKI/certs/ecdsa-p256.crt" \
    "${KEYARGS[@]}" --tickets-from-keyserver --threads 1 --metrics "127.0.0.1:$M"
wait_port "$M" 10 || fail "metrics port not open"
scrape() { curl -fsS "http://127.0.0.1:$M/metrics" >"$W/m.txt" || fail "curl /metrics"; }
# metric NAME{LABELS}: its value in the last scrape ("absent" when it is not there).
metric() {
    awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "absent" : v) }' "$W/m.txt"
}
OK='keyward_proxy_ticket_keys_fetches_total{result="ok"}'
FAILED='keyward_proxy_ticket_keys_fetches_total{result="failed"}'
LAST=keyward_proxy_ticket_keys_last_fetch_timestamp_seconds
AGE=keyward_proxy_ticket_keys_age_seconds
FLEET=keyward_proxy_ticket_keys_fleet

scrape
grep -q "^# TYPE keyward_proxy_ticket_keys_fetches_total counter" "$W/m.txt" ||
    fail "no ticket key metrics: $(grep ticket "$W/m.txt")"
[ "$(metric "$OK")" -ge 1 ] || fail "ok fetches $(metric "$OK")"
[ "$(metric "$FAILED")" = 0 ] || fail "failed fetches $(metric "$FAILED")"
[ "$(metric "$FLEET")" = 1 ] || fail "fleet gauge $(metric "$FLEET")"
now=$(date +%s)
last=$(metric "$LAST")
[ $((now - last)) -ge 0 ] && [ $((now - last)) -le 3 ] || fail "last fetch $last, now $now"
[ "$(metric "$AGE")" -le 3 ] || fail "age $(metric "$AGE")"
pass "after start: $(grep '^keyward_proxy_ticket_keys' "$W/m.txt" | tr '\n' ' ')"

# 2-second epochs: the proxy fetches again just after each one ends.
ok1=$(metric "$OK")
tries=100
until scrape && [ "$(metric "$OK")" -ge $((ok1 + 2)) ]; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || fail "no refetch counted in 10 s: $(metric "$OK") ok"
    sleep 0.1
done
pass "refetches after each rotation counted: $ok1 -> $(metric "$OK") ok"

# The key server goes: failures count, the age grows, the fleet keys end (local key).
kw_stop "$KS_PID" || true
tries=200
until scrape && [ "$(metric "$FAILED")" -ge 1 ] && [ "$(metric "$FLEET")" = 0 ]; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || fail "after the key server stopped: failed $(metric "$FAILED"), fleet $(metric "$FLEET")"
    sleep 0.1
done
[ "$(metric "$AGE")" -ge 1 ] || fail "the age did not grow: $(metric "$AGE")"
[ "$(metric "$LAST")" -ge "$last" ] || fail "the last fetch time went back"
pass "key server gone: $(grep '^keyward_proxy_ticket_keys' "$W/m.txt" | tr '\n' ' ')"

P2=$(free_port)
M2=$(free_port)
start_proxy plain "$P2" --backend "127.0.0.1:$BP" \
    --cert "$PKI/keys/ecdsa-p256.crt,$PKI/keys/ecdsa-p256.key" --threads 1 \
    --metrics "127.0.0.1:$M2"
wait_port "$M2" 10 || fail "metrics port of the plain proxy not open"
curl -fsS "http://127.0.0.1:$M2/metrics" >"$W/m2.txt" || fail "curl plain /metrics"
! grep -q ticket_keys "$W/m2.txt" || fail "a proxy without --tickets-from-keyserver shows ticket keys"
pass "a proxy without --tickets-from-keyserver has no ticket key metrics"
