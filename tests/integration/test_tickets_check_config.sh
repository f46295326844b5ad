#!/bin/bash
# keyward-keyserver --check-config checks the --ticket-secret file with the checks of the start
# (and of a SIGHUP): a missing file, one group or others may read (0644, 0640) or one shorter than
# 32 bytes exits 1 with a message naming the file; a good one (also given as YAML ticket_secret)
# exits 0 and the summary names it.
. "$(dirname "$0")/lib.sh"
make_pki
W=$KW_TMP/w
mkdir -p "$W"
KSARGS=(--cert "$PKI/keyserver.crt" --key "$PKI/keyserver.key" --ca "$PKI/ca.crt"
    --keys "$PKI/keys" --allow "cn:edge=tickets")
check_fails() { check_config_fails "$KW_BIN/keyward-keyserver" "$@"; } # WHAT PATTERN ARGS...

check_fails "a missing ticket secret" "ticket secret $W/nothere: No such file" \
    "${KSARGS[@]}" --ticket-secret "$W/nothere"
head -c 48 /dev/urandom >"$W/open"
chmod 644 "$W/open"
check_fails "a ticket secret of mode 0644" "ticket secret $W/open is readable.*chmod 600" \
    "${KSARGS[@]}" --ticket-secret "$W/open"
head -c 48 /dev/urandom >"$W/group"
chmod 640 "$W/group"
check_fails "a ticket secret of mode 0640" "ticket secret $W/group is readable.*(mode 0640)" \
    "${KSARGS[@]}" --ticket-secret "$W/group"
head -c 16 /dev/urandom >"$W/short"
chmod 600 "$W/short"
check_fails "a 16-byte ticket secret" "ticket secret $W/short has 16 bytes.*at least 32" \
    "${KSARGS[@]}" --ticket-secret "$W/short"
mkdir -m 700 "$W/dir"
check_fails "a directory as ticket secret" "ticket secret $W/dir is not a regular file" \
    "${KSARGS[@]}" --ticket-secret "$W/dir"

head -c 32 /dev/urandom >"$W/good"
chmod 600 "$W/good"
out=$("$KW_BIN/keyward-keyserver" --check-config "${KSARGS[@]}" --ticket-secret "$W/good" 2>&1) ||
    fail "--check-config with a good ticket secret: $out"
grep -q "session-ticket keys from $W/good, a new key every 3600 s" <<<"$out" ||
    fail "--check-config does not name the ticket secret: $out"
grep -q 'configuration is ok' <<<"$out" || fail "--check-config does not say ok: $out"
pass "--check-config with a good 32-byte ticket secret: exit 0, named in the summary"

cat >"$W/ks.yaml" <<YAML
cert: $PKI/keyserver.crt
key: $PKI/keyserver.key
ca: $PKI/ca.crt
keys: $PKI/keys
ticket_secret: $W/short
ticket_rotation_s: 600
allow:
  - cn: edge
    keys: [tickets]
YAML
check_fails "YAML ticket_secret of 16 bytes" "ticket secret $W/short has 16 bytes" \
    --config "$W/ks.yaml"
sed -i "s|^ticket_secret: .*|ticket_secret: $W/good|" "$W/ks.yaml"
out=$("$KW_BIN/keyward-keyserver" --check-config --config "$W/ks.yaml" 2>&1) ||
    fail "--check-config with a good YAML ticket_secret: $out"
grep -q "session-ticket keys from $W/good, a new key every 600 s" <<<"$out" ||
    fail "--check-config does not name the YAML ticket secret: $out"
pass "YAML ticket_secret: refused when short, accepted when good"
