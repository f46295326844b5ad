#!/bin/bash
# A SIGHUP reload builds the new key store beside the old one (in libuv's thread pool, so in
# another malloc arena), then frees the old: the freed pages go back to the system (malloc_trim
# after the swap), so the key server's RSS after the reload returns near its figure before instead
# of keeping both stores' worth (issue 16: 38.8 -> 65.8 MiB with 10,000 keys). With 4,000 ECDSA
# keys and certificates (bench/tools/ks_genkeys.py), the RSS growth over a reload must stay under
# half of what the keys themselves take (RSS with the keys less RSS with an empty directory).
. "$(dirname "$0")/lib.sh"

# Debian's python3-cryptography (scripts/install-deps.sh) is /usr/bin/python3's; a python3 earlier
# in PATH (pyenv) may not see it. Missing, the test fails: make test installs it.
PY=python3
python3 -c 'import cryptography' 2>/dev/null || PY=/usr/bin/python3
"$PY" -c 'import cryptography' 2>/dev/null ||
    fail "python3-cryptography is needed to generate the keys (scripts/install-deps.sh installs it)"
N=4000
K=$KW_TMP/keys
GEN=$KW_SOURCE_DIR/bench/tools/ks_genkeys.py
"$PY" "$GEN" "$K" $((N / 2)) 0 &
gen=$!
"$PY" "$GEN" "$K" "$N" $((N / 2)) || fail "key generation"
wait "$gen" || fail "key generation"
[ "$(find "$K" -name '*.key' | wc -l)" = "$N" ] || fail "not $N keys generated"
make_pki
mkdir -p "$KW_TMP/empty"

rss() { awk '$1 == "VmRSS:" {print $2}' "/proc/$KS_PID/status"; }

# start_ks NAME DIR: a key server of DIR's keys (KS_PID, on KS_PORT), once it listens with all
# of them.
start_ks() {
    local port n
    port=$(free_port)
    KS_PORT=$port
    n=$(find "$2" -name '*.key' | wc -l)
    start_bg "$1" "$KW_BIN/keyward-keyserver" --listen "127.0.0.1:$port" --cert "$PKI/keyserver.crt" \
        --key "$PKI/keyserver.key" --ca "$PKI/ca.crt" --keys "$2" --allow-all
    KS_PID=$LAST_PID
    wait_port "$port" 300 || fail "the key server $1 did not start"
    wait_for_line "$KW_TMP/$1.log" "listening on .*, $n keys" "$1: not all $n keys loaded" 30
}

start_ks empty "$KW_TMP/empty"
BASE=$(rss)
kill "$KS_PID"

start_ks ks "$K"
BEFORE=$(rss)
kill -HUP "$KS_PID"
wait_for_line "$KW_TMP/ks.log" "reloaded: $N keys" "no reload of the $N keys" 300
sleep 0.5
AFTER=$(rss)
STORE=$((BEFORE - BASE))
GROWTH=$((AFTER - BEFORE))
echo "RSS: $BASE KiB without keys, $BEFORE KiB with $N keys, $AFTER KiB after the reload"
[ "$STORE" -gt 0 ] || fail "RSS with keys ($BEFORE KiB) not above RSS without ($BASE KiB)"
[ $((2 * GROWTH)) -lt "$STORE" ] ||
    fail "RSS grew by $GROWTH KiB over the reload: not under half the keys' $STORE KiB"
pass "RSS after the reload: +$GROWTH KiB (the keys take $STORE KiB)"
kw_cli "$KS_PORT" ping --count 1 >/dev/null || fail "ping after the reload"
pass "the key server answers after the reload"
