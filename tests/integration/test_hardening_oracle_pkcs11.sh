#!/bin/bash
# Implicit rejection is the same for a key on a PKCS#11 token as for the same key in a PEM file
# (issue 20 item 3): the site's rsa2048 key is imported into a SoftHSM2 token; key servers serve
# it from the token with raw RSA (CKM_RSA_X_509, padding checked here), from the same token
# through the no-raw shim (CKM_RSA_PKCS, the token unpads), and from the PEM file. kw_hard_oracle
# sends valid and invalid 0xA0 and 0xA1 requests to each token server with the PEM server as its
# --peer: every answer must be the same on both (so a fleet mixing files and HSMs answers alike),
# the same when asked again, and right for valid ciphertexts (kw_hard_oracle compares every second
# request with the peer and sends every fourth twice).
. "$(dirname "$0")/lib.sh"

make_pki
softhsm_token
SHIM=$KW_TESTS/kw_p11_noraw.so
[ -f "$SHIM" ] || fail "no $SHIM: build first"
softhsm2-util --import "$PKI/keys/rsa2048.key" --token keyward --label site-rsa --id 01 \
    --pin 246810 >/dev/null || fail "import the PEM key into the token"
pass "the PEM rsa2048 key imported into a SoftHSM2 token"

PEM_PORT=$(free_port)
start_keyserver pem "$PEM_PORT"
RAW_PORT=$(free_port)
start_keyserver_token tok "$RAW_PORT" "$MODULE" --workers 2
export KW_P11_REAL_MODULE=$MODULE KW_P11_SHIM_LOG=$KW_TMP/shim.log
NORAW_PORT=$(free_port)
start_keyserver_token noraw "$NORAW_PORT" "$SHIM" --workers 2
grep -q "offers no raw RSA" "$KW_TMP/noraw.log" || fail "the shim's token offers raw RSA"

samples=300
[ "${KW_SANITIZE:-OFF}" = ON ] && samples=100
oracle() { # NAME PORT OP
    local out
    out=$("$KW_TESTS/kw_hard_oracle" --server "127.0.0.1:$2" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" --key-cert "$PKI/keys/rsa2048.crt" \
        --samples "$samples" --op "$3" --peer "127.0.0.1:$PEM_PORT") ||
        fail "$1 $3: answers differ from the PEM key server's or between queries: $out"
    echo "$out" | sed 's/^/   /'
    pass "$1 $3: $samples valid + $samples invalid requests answered as the PEM key server does"
}
oracle "token (raw RSA)" "$RAW_PORT" 0xa0
oracle "token (raw RSA)" "$RAW_PORT" 0xa1
oracle "token without raw RSA" "$NORAW_PORT" 0xa0
oracle "token without raw RSA" "$NORAW_PORT" 0xa1
grep -q "CKM_RSA_PKCS decrypt" "$KW_P11_SHIM_LOG" || fail "the shim's token was not asked to unpad"
for pid in "${KW_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || fail "a key server died"
done
