#!/bin/bash
# Key hygiene while keys are loaded (issue 20 item 9): the key server is non-dumpable with core
# dumps off BEFORE it reads the first key or PIN (seen from inside the process by the PKCS#11 shim,
# whose C_Initialize runs as the token is opened and logs prctl(PR_GET_DUMPABLE) and
# RLIMIT_CORE); key files readable by group or others are named in a warning (and loaded); running
# as root without --user is warned about.
. "$(dirname "$0")/lib.sh"

SHIM=$KW_TESTS/kw_p11_noraw.so
[ -f "$SHIM" ] || fail "no $SHIM: build first"
make_pki
softhsm_token
pkcs11-tool --module "$MODULE" --token-label keyward --login --pin 246810 --keypairgen \
    --key-type rsa:2048 --id 01 --label site-rsa >/dev/null 2>&1 || fail "RSA key on the token"
# A core limit the key server must lower (so the check means something where the default is 0).
hard=$(ulimit -Hc)
[ "$hard" = 0 ] || ulimit -c "$hard"
key_dir "$KW_TMP/keys" rsa2048 ecdsa-p256
chmod 600 "$KW_TMP/keys/rsa2048.key"
chmod 644 "$KW_TMP/keys/ecdsa-p256.key"

export KW_P11_REAL_MODULE=$MODULE KW_P11_SHIM_LOG=$KW_TMP/shim.log
PORT=$(free_port)
start_keyserver_token ks "$PORT" "$SHIM" --keys "$KW_TMP/keys"
line=$(grep -m1 "^C_Initialize" "$KW_P11_SHIM_LOG") || fail "the shim logged no C_Initialize"
[ "$line" = "C_Initialize dumpable=0 core_soft=0 core_hard=0" ] ||
    fail "while the token was opened (before keys and PIN): $line (core hard limit was $hard)"
pass "non-dumpable, core limit 0 before the token is opened and any key read"

grep -q "key file $KW_TMP/keys/ecdsa-p256.key is accessible by group or others (mode 0644)" \
    "$KW_TMP/ks.log" || fail "no warning for a key file of mode 644"
if grep -q "key file $KW_TMP/keys/rsa2048.key is accessible" "$KW_TMP/ks.log"; then
    fail "a warning for a key file of mode 600"
fi
grep -q "loaded key ecdsa-p256" "$KW_TMP/ks.log" || fail "the 644 key was not loaded"
pass "a key file readable by others is named in a warning (and still loaded); mode 600 is quiet"

if [ "$(id -u)" = 0 ]; then
    grep -q "running as root without --user" "$KW_TMP/ks.log" || fail "no warning about root"
    pass "running as root without --user is warned about"
else
    if grep -q "running as root" "$KW_TMP/ks.log"; then fail "root warning without root"; fi
    pass "no root warning when not root"
fi
kill -0 "$KS_PID" 2>/dev/null || fail "key server died"

# --rsa-cache-factors yes (OpenSSL's own caching, faster RSA) still serves verified signatures.
PORT2=$(free_port)
start_keyserver ks2 "$PORT2" --rsa-cache-factors yes
echo hello >"$KW_TMP/msg"
kw_cli "$PORT2" sign --key-cert "$PKI/keys/rsa2048.crt" --alg rsa-pss-sha256 --in "$KW_TMP/msg" \
    --out "$KW_TMP/sig" >/dev/null || fail "sign with --rsa-cache-factors yes"
openssl x509 -in "$PKI/keys/rsa2048.crt" -pubkey -noout >"$KW_TMP/pub"
openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
    -verify "$KW_TMP/pub" -signature "$KW_TMP/sig" "$KW_TMP/msg" >/dev/null ||
    fail "signature with --rsa-cache-factors yes does not verify"
pass "--rsa-cache-factors yes serves verified RSA signatures"
