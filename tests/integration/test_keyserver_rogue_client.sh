#!/bin/bash
# A client whose certificate another CA signed (keygen's rogue.crt: CN=edge, issuer "rogue CA"):
# the key server refuses it and its log names who was refused and why — the certificate's
# subject and issuer and OpenSSL's verify reason — not only "certificate verify failed".
# An expired edge certificate of the right CA is named with its reason too.
. "$(dirname "$0")/lib.sh"
make_pki

PORT=$(free_port)
start_keyserver ks "$PORT"
"$KW_BIN/keyward" ping --server "127.0.0.1:$PORT" --cert "$PKI/rogue.crt" --key "$PKI/rogue.key" \
    --ca "$PKI/ca.crt" >"$KW_TMP/ping.out" 2>&1 && fail "a rogue client's ping succeeded"
wait_for_line "$KW_TMP/ks.log" "TLS handshake failed" "the key server logged no refused handshake"
line=$(grep -m1 "TLS handshake failed" "$KW_TMP/ks.log")
for want in "CN *= *edge" "rogue CA" "unable to get local issuer certificate"; do
    grep -Eq "$want" <<<"$line" || fail "the key server's line lacks '$want': $line"
done
pass "rogue client named: '${line#*WARN: }'"

# An expired certificate of the right CA.
printf '%s\n' "[ca]" "default_ca = d" "[d]" "database = $KW_TMP/index.txt" \
    "new_certs_dir = $KW_TMP" "serial = $KW_TMP/serial" "default_md = sha256" "policy = p" \
    "unique_subject = no" "[p]" "commonName = supplied" "[ext]" \
    "extendedKeyUsage = clientAuth" "basicConstraints = critical,CA:FALSE" >"$KW_TMP/ca.cnf"
: >"$KW_TMP/index.txt"
echo 1000 >"$KW_TMP/serial"
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=old-edge" \
    -keyout "$KW_TMP/old.key" -out "$KW_TMP/old.csr" 2>/dev/null || fail "req"
openssl ca -batch -config "$KW_TMP/ca.cnf" -extensions ext -cert "$PKI/ca.crt" \
    -keyfile "$PKI/ca.key" -in "$KW_TMP/old.csr" -notext -out "$KW_TMP/old.crt" \
    -startdate "$(date -u -d '-3 days' +%y%m%d%H%M%SZ)" \
    -enddate "$(date -u -d '-1 day' +%y%m%d%H%M%SZ)" >/dev/null 2>&1 || fail "openssl ca"
"$KW_BIN/keyward" ping --server "127.0.0.1:$PORT" --cert "$KW_TMP/old.crt" --key "$KW_TMP/old.key" \
    --ca "$PKI/ca.crt" >"$KW_TMP/ping.out" 2>&1 && fail "an expired client's ping succeeded"
wait_for_line "$KW_TMP/ks.log" "old-edge" "the expired client is not named in the key server's log"
grep -m1 "old-edge" "$KW_TMP/ks.log" | kw_grep "certificate has expired" ||
    fail "no 'certificate has expired': $(grep -m1 old-edge "$KW_TMP/ks.log")"
pass "expired client named: '$(grep -m1 old-edge "$KW_TMP/ks.log" | sed 's/.*WARN: //')'"
