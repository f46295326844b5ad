#!/bin/bash
# keyward-keyserver as an operator runs it (issue 18):
#   a site key 0640 in the key server's own group (the package's layout) draws no warning;
#   --check-config: 0 and what would run for a good configuration; 1 and the reason for a missing
#     certificate, a site key readable by every user, a --user that does not exist, a bad flag;
#   /health (alive) and /ready (keys loaded; with --upstream, an upstream answers) on the metrics
#     listener, without the bearer token that /metrics needs.
. "$(dirname "$0")/lib.sh"
make_pki
KSARGS=(--cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt")

out=$("$KW_BIN/keyward-keyserver" --check-config "${KSARGS[@]}" --keys "$PKI/keys" 2>&1) ||
    fail "--check-config of a good configuration: $out"
grep -q 'keys\? loaded from' <<<"$out" && grep -q 'configuration is ok' <<<"$out" ||
    fail "--check-config does not say what it would run: $out"
pass "--check-config: exit 0: $(grep -o '[0-9]* keys loaded' <<<"$out")"

# The package's layout: keys root:keyward 0640, the server running as group keyward. A key readable
# by the server's own group only is what the warning itself advises: no warning for it.
mkdir -p "$KW_TMP/groupkeys"
cp "$PKI/keys/ecdsa-p256.key" "$PKI/keys/ecdsa-p256.crt" "$KW_TMP/groupkeys/"
chgrp "$(id -g)" "$KW_TMP/groupkeys/ecdsa-p256.key"
chmod 640 "$KW_TMP/groupkeys/ecdsa-p256.key"
out=$("$KW_BIN/keyward-keyserver" --check-config "${KSARGS[@]}" --keys "$KW_TMP/groupkeys" 2>&1) ||
    fail "--check-config with a 0640 key of the server's group: $out"
! grep -q 'accessible by group' <<<"$out" ||
    fail "a key readable by the server's own group (0640) is warned about: $(grep accessible <<<"$out")"
pass "a key 0640 in the server's own group loads without a warning"

check_fails() { check_config_fails "$KW_BIN/keyward-keyserver" "$@"; } # WHAT PATTERN ARGS...
check_fails "a missing certificate" "nothere.crt: No such file" --cert "$PKI/nothere.crt" \
    --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$PKI/keys"
mkdir -p "$KW_TMP/openkeys"
cp "$PKI/keys/ecdsa-p256.key" "$KW_TMP/openkeys/"
chmod 644 "$KW_TMP/openkeys/ecdsa-p256.key"
check_fails "a key readable by everyone" "ecdsa-p256.key is readable by every user" \
    "${KSARGS[@]}" --keys "$KW_TMP/openkeys"
check_fails "a user that does not exist" "user kw-nobody-here does not exist" \
    "${KSARGS[@]}" --keys "$PKI/keys" --user kw-nobody-here
check_fails "a bad flag" "unknown option" "${KSARGS[@]}" --bogus-flag

# ---- /health and /ready ----
http() { metrics_get "$@"; }
printf 'a-long-enough-metrics-token-123456\n' >"$KW_TMP/token"
chmod 600 "$KW_TMP/token"
KS=$(free_port)
KM=$(free_port)
start_keyserver ks "$KS" --metrics "127.0.0.1:$KM" --metrics-token-file "$KW_TMP/token"
wait_port "$KM" 10 || fail "metrics listener"
[ "$(http "$KM" /health)" = 200 ] || fail "/health: $(cat "$KW_TMP/body")"
[ "$(ready_code "$KM")" = 200 ] || fail "/ready with keys: $(cat "$KW_TMP/body")"
ready=$(cat "$KW_TMP/body")
[ "$(http "$KM" /metrics)" = 401 ] || fail "/metrics without the token is not 401"
pass "/health 200, /ready 200 ($ready), both without the token /metrics needs (401)"

mkdir -p "$KW_TMP/nokeys"
KS2=$(free_port)
KM2=$(free_port)
start_bg ks-empty "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$KS2" "${KSARGS[@]}" \
    --keys "$KW_TMP/nokeys" --metrics "127.0.0.1:$KM2"
wait_port "$KM2" 15 || fail "key server without keys did not start"
[ "$(http "$KM2" /health)" = 200 ] || fail "/health without keys"
[ "$(ready_code "$KM2")" = 503 ] || fail "/ready without keys is not 503: $(cat "$KW_TMP/body")"
grep -q 'no keys loaded' "$KW_TMP/body" || fail "/ready without keys says: $(cat "$KW_TMP/body")"
pass "no keys: /health 200, /ready 503 '$(cat "$KW_TMP/body")'"

# a forwarding key server: ready while its upstream answers, not once it is gone
make_peer_identity fwd
KS3=$(free_port)
KM3=$(free_port)
start_bg ks-fwd "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$KS3" --cert "$PKI/fwd.crt" \
    --key "$PKI/fwd.key" --ca "$PKI/ca.crt" --keys "$KW_TMP/nokeys" --upstream "127.0.0.1:$KS" \
    --metrics "127.0.0.1:$KM3"
wait_port "$KM3" 15 || fail "forwarding key server did not start"
[ "$(ready_code "$KM3")" = 200 ] || fail "/ready with a live upstream: $(cat "$KW_TMP/body")"
pass "forwarder: /ready 200 with its upstream up ($(cat "$KW_TMP/body"))"
kill "$KS_PID"
wait "$KS_PID" 2>/dev/null || true
[ "$(http "$KM3" /ready)" = 503 ] || fail "/ready with the upstream down: $(cat "$KW_TMP/body")"
grep -q 'no upstream answers' "$KW_TMP/body" || fail "/ready says: $(cat "$KW_TMP/body")"
why=$(cut -c1-100 "$KW_TMP/body")
[ "$(http "$KM3" /health)" = 200 ] || fail "/health with the upstream down"
pass "forwarder: upstream down: /ready 503 '$why', /health 200"
