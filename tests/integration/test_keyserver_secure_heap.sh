#!/bin/bash
# The secure heap is sized from the key files (twice their bytes, for SIGHUP reloads; issue 16),
# and keys that cannot be protected are named with numbers: with the heap capped at 4 KiB
# (KW_SECURE_HEAP_MAX_KIB) the test PKI's RSA-3072 and RSA-4096 keys do not fit, are refused
# (OpenSSL 3.0 fails the decoding rather than use ordinary memory), and one warning gives the
# keys not loaded, the KiB used of the heap, the keys loaded and the bytes per key; the other keys
# are served. Uncapped, the seven keys get a 1 MiB heap and no warning.
. "$(dirname "$0")/lib.sh"

make_pki
P1=$(free_port)
KW_SECURE_HEAP_MAX_KIB=4 start_keyserver capped "$P1" --log-level debug
wait_for_line "$KW_TMP/capped.log" "listening on" "capped key server did not start" 15
kw_grep "capped at 4 KiB" "$KW_TMP/capped.log" || fail "no warning that the heap is capped"
kw_grep "rsa4096.key refused: the secure heap is full" "$KW_TMP/capped.log" ||
    fail "RSA-4096 key not refused for lack of secure heap"
line=$(grep "secure heap full" "$KW_TMP/capped.log" || true)
[ -n "$line" ] || fail "no 'secure heap full' warning"
grep -Eq "2 key\(s\) not loaded.* [0-9]+ of 4 KiB used by 5 key\(s\) \([0-9]+ bytes each" <<<"$line" ||
    fail "warning without the numbers: $line"
pass "capped heap: ${line#*WARN: }"
kw_cli "$P1" ping --count 1 >/dev/null || fail "ping to the capped key server"
kw_grep ", 5 keys" "$KW_TMP/capped.log" || fail "not serving the 5 keys that fit"
pass "the keys that fit are served"

P2=$(free_port)
start_keyserver full "$P2" --log-level debug
wait_for_line "$KW_TMP/full.log" "listening on" "key server did not start" 15
kw_grep -E "secure heap( of|:) 1024 KiB" "$KW_TMP/full.log" ||
    fail "heap not sized from the files: $(grep 'secure heap' "$KW_TMP/full.log")"
grep -q "secure heap full\|capped at" "$KW_TMP/full.log" && fail "warning without a cap"
pass "uncapped: $(grep -o 'secure heap: [0-9]* of [0-9]* KiB used by 7 key(s)' "$KW_TMP/full.log")"
