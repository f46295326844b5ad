#!/bin/bash
# Resource abuse at the key server's network edge (issue 7): a frame announcing a 65,535-byte body
# followed by silence, 10,000 requests in flight on one connection, 2,000 idle connections, a
# client that never reads its replies. Each must leave the server's memory bounded (VmRSS of the
# real process, printed) and a well-behaved client served at its normal speed (a timed batch of
# pings and ECDSA signs before and after, printed). Malformed frames, bad certificates and
# short-lived abuse are in test_keyserver_badinput.sh. Tools: kw_hard_flood, kw_rawclient.
. "$(dirname "$0")/lib.sh"

make_pki
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 4200 ] || fail "need 4200 file descriptors for 2,000 connections, have $(ulimit -n)"

SHORT=$(free_port)
start_keyserver short "$SHORT" --idle-timeout-ms 1500 --handshake-timeout-ms 3000
SHORT_PID=$KS_PID
LONG=$(free_port)
start_keyserver long "$LONG" --idle-timeout-ms 120000 --handshake-timeout-ms 20000
LONG_PID=$KS_PID

ECC=$PKI/keys/ecdsa-p256.crt
D32=$(printf '5a%.0s' $(seq 32))
SLOW=${KW_SANITIZE:-OFF}
# ASan keeps freed memory in quarantine and pads every allocation: memory bounds are 8x there.
MEM=1
[ "$SLOW" = ON ] && MEM=8
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$1/status"; }
rawc() { # PORT args...
    local port=$1
    shift
    "$KW_TESTS/kw_rawclient" --server "127.0.0.1:$port" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" "$@"
}
flood() { # PORT PID args...
    local port=$1 pid=$2
    shift 2
    "$KW_TESTS/kw_hard_flood" --server "127.0.0.1:$port" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" --rss-pid "$pid" "$@"
}
# good_batch PORT: prints the milliseconds a well-behaved client needs for 300 pings one at a
# time plus 1,000 ECDSA signs 16 in flight; fails when a reply is missing.
good_batch() {
    local t0 t1 out
    t0=$(date +%s%N)
    out=$(rawc "$1" --op ping --payload-hex 6f6b --count 300 --inflight 1) ||
        fail "good client: pings failed: $out"
    case $out in *"300 replies, 0 unexpected"*) ;; *) fail "good client pings: $out" ;; esac
    out=$(rawc "$1" --op 0x15 --key-cert "$ECC" --payload-hex "$D32" --count 1000 --inflight 16) ||
        fail "good client: signs failed: $out"
    case $out in *"1000 replies, 0 unexpected"*) ;; *) fail "good client signs: $out" ;; esac
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
# check_speed WHAT PORT BASELINE_MS: the batch after WHAT is within a generous bound of the
# baseline (the box is a shared 2-core VM: 4x + 1.5 s).
check_speed() {
    local ms
    ms=$(good_batch "$2")
    echo "   good client after $1: $ms ms (baseline $3 ms)"
    [ "$ms" -le $(($3 * 4 + 1500)) ] || fail "after $1 the good client took $ms ms (baseline $3)"
}

good_batch "$SHORT" >/dev/null # warm-up (TLS session, worker contexts)
BASE_SHORT=$(good_batch "$SHORT")
BASE_LONG=$(good_batch "$LONG")
pass "baseline good client: $BASE_SHORT ms / $BASE_LONG ms (300 pings + 1,000 ECDSA signs)"

# 1. A frame announcing 65,535 body bytes, then silence: cut by the idle timeout (1.5 s).
out=$(rawc "$SHORT" --raw-hex 0100ffff00000001 --expect-close --timeout-ms 8000) ||
    fail "65,535-byte header then silence: not closed: $out"
ms=$(echo "$out" | sed -n 's/.*closed by server after \([0-9]*\) ms.*/\1/p')
echo "   header only: $out"
out=$(flood "$SHORT" "$SHORT_PID" --hold 200 --partial-frame 65000 --hold-ms 5000) ||
    fail "200 partial 65,535-byte frames: $out"
echo "$out" | sed 's/^/   /'
grep -q "200 of 200 closed by the server" <<<"$out" ||
    fail "partial frames were not all cut by the idle timeout: $out"
per=$(echo "$out" | sed -n 's/.*per connection \([0-9]*\).*/\1/p')
[ "${per:-99999}" -le $((200 * MEM)) ] || fail "a partial 64 KiB frame costs $per KiB per connection"
check_speed "65,535-byte frames then silence" "$SHORT" "$BASE_SHORT"
pass "65,535-byte frame then silence: closed by the idle timeout${ms:+ after $ms ms}; 200 at once: ${per} KiB each"

# 2. 10,000 requests in flight on one connection (10 MB padded like gokeyless): all answered,
# the server's memory does not grow with what is queued (it stops reading).
out=$(flood "$LONG" "$LONG_PID" --inflight 10000 --pad 1024 --key-cert "$ECC" --stall-ms 3000) ||
    fail "10,000 in flight: $out"
echo "$out" | sed 's/^/   /'
grep -q "replies 10000 of 10000, 0 unexpected" <<<"$out" || fail "10,000 in flight: $out"
growth=$(echo "$out" | sed -n 's/.*growth \(-*[0-9]*\).*/\1/p')
[ "$growth" -le $((8192 * MEM)) ] || fail "10,000 in flight grew the key server by $growth KiB (>8 MiB)"
check_speed "10,000 in flight" "$LONG" "$BASE_LONG"
pass "10,000 requests in flight on one connection: all answered, RSS growth $growth KiB for 10 MB sent"

# 3. 2,000 idle connections held: RSS per connection bounded, none dropped while held.
n=2000
[ "$SLOW" = ON ] && n=500 # ASan: handshakes are ~5x slower; keep the test short
out=$(flood "$LONG" "$LONG_PID" --hold "$n" --hold-ms 2000) || fail "$n idle connections: $out"
echo "$out" | sed 's/^/   /'
grep -q "0 of $n closed" <<<"$out" || fail "idle connections were dropped while held: $out"
per=$(echo "$out" | sed -n 's/.*per connection \([0-9]*\).*/\1/p')
limit=$((128 * MEM))
[ "${per:-99999}" -le "$limit" ] || fail "$per KiB of key server RSS per idle connection (> $limit)"
check_speed "$n idle connections" "$LONG" "$BASE_LONG"
pass "$n idle connections held: $per KiB of key server RSS per connection"

# 4. A client that never reads its replies (60 KB pings echoed) for 4 s, while a good client
# runs next to it: the server stops reading it, its memory stays bounded, the other is served.
flood "$SHORT" "$SHORT_PID" --noread --payload 60000 --hold-ms 4000 >"$KW_TMP/noread.out" 2>&1 &
NOREAD=$!
sleep 1
ms=$(good_batch "$SHORT")
echo "   good client next to the non-reading client: $ms ms (baseline $BASE_SHORT ms)"
[ "$ms" -le $((BASE_SHORT * 4 + 1500)) ] || fail "good client slowed to $ms ms by a non-reader"
wait "$NOREAD" || fail "non-reading client: $(cat "$KW_TMP/noread.out")"
sed 's/^/   /' "$KW_TMP/noread.out"
growth=$(sed -n 's/.*growth \(-*[0-9]*\).*/\1/p' "$KW_TMP/noread.out")
wrote=$(sed -n 's/.*wrote \([0-9]*\) bytes.*/\1/p' "$KW_TMP/noread.out")
[ "$growth" -le $((8192 * MEM)) ] || fail "a non-reading client grew the key server by $growth KiB"
[ "$wrote" -le $((64 * 1024 * 1024)) ] || fail "the server kept reading a non-reader ($wrote bytes)"
check_speed "a client that never reads" "$SHORT" "$BASE_SHORT"
pass "client that never reads: it could write $wrote bytes in 4 s, RSS growth $growth KiB"

for pid in "$SHORT_PID" "$LONG_PID"; do
    kill -0 "$pid" 2>/dev/null || fail "a key server died"
done
if grep -E "AddressSanitizer|runtime error|LeakSanitizer" "$KW_TMP"/short.log "$KW_TMP"/long.log; then
    fail "sanitizer report in a key server log"
fi
echo "   key server RSS at the end: short $(rss "$SHORT_PID") KiB, long $(rss "$LONG_PID") KiB"
pass "both key servers alive and serving"
