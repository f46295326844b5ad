#!/bin/bash
# Every opcode against every key type of the test PKI (all digests on RSA-2048 and P-256, one or
# two per family on the larger keys), through the real key server, with and without
# gokeyless-style 1024-byte padding. Signatures are verified with `openssl pkeyutl`,
# decryptions compared with the plaintext encrypted by `openssl pkeyutl -encrypt`.
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT" --enable-op rsa-decrypt --enable-op rsa-raw-decrypt # 0x01, 0x08
W=$KW_TMP/work
mkdir -p "$W"

rawc() {
    "$KW_TESTS/kw_rawclient" --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" "$@"
}
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
size() { wc -c <"$1" | tr -d ' '; }

# digest NAME FILE OUT: the raw digest (md5-sha1 is MD5 || SHA1, 36 bytes).
digest() {
    if [ "$1" = md5-sha1 ]; then
        { openssl dgst -md5 -binary "$2"; openssl dgst -sha1 -binary "$2"; } >"$3"
    else
        openssl dgst "-$1" -binary "$2" >"$3"
    fi
}

head -c 1000 /dev/urandom >"$W/msg"
MDS="md5-sha1 sha1 sha224 sha256 sha384 sha512"
op_of() { # family md -> opcode
    local base
    case $1 in rsa) base=2 ;; ecdsa) base=18 ;; pss) base=$((0x35 - 3)) ;; esac
    local i=0 m
    for m in $MDS; do
        [ "$m" = "$2" ] && { printf '0x%02x' $((base + i)); return; }
        i=$((i + 1))
    done
}

# sign_verify KEY FAMILY MD PAD
sign_verify() {
    local key=$1 fam=$2 md=$3 pad=$4 crt=$PKI/keys/$1.crt opts=()
    local op
    op=$(op_of "$fam" "$md")
    digest "$md" "$W/msg" "$W/dgst"
    rawc --pad "$pad" --op "$op" --key-cert "$crt" --payload-file "$W/dgst" --out "$W/sig" \
        >/dev/null || fail "$key $fam-$md (op $op, pad $pad): no signature"
    case $fam in
    rsa) opts=(-pkeyopt "digest:$md") ;;
    pss) opts=(-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest -pkeyopt "digest:$md") ;;
    esac
    openssl pkeyutl -verify -certin -inkey "$crt" "${opts[@]}" -in "$W/dgst" -sigfile "$W/sig" \
        >/dev/null || fail "$key $fam-$md (op $op, pad $pad): signature does not verify"
}

rsa_decrypts() { # KEY PAD
    local key=$1 pad=$2 crt=$PKI/keys/$1.crt k
    k=$(( $(openssl x509 -in "$crt" -noout -text | sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p') / 8 ))
    # 0x01 PKCS#1 v1.5
    head -c 32 /dev/urandom >"$W/pt"
    openssl pkeyutl -encrypt -certin -inkey "$crt" -in "$W/pt" -out "$W/ct"
    rawc --pad "$pad" --op 0x01 --key-cert "$crt" --payload-file "$W/ct" --out "$W/dec" >/dev/null ||
        fail "$key rsa-decrypt pad $pad"
    cmp -s "$W/pt" "$W/dec" || fail "$key rsa-decrypt pad $pad: wrong plaintext"
    # 0x08 raw: a k-byte block below the modulus (leading zero byte)
    { printf '\000'; head -c $((k - 1)) /dev/urandom; } >"$W/block"
    openssl pkeyutl -encrypt -certin -inkey "$crt" -pkeyopt rsa_padding_mode:none \
        -in "$W/block" -out "$W/ct"
    rawc --pad "$pad" --op 0x08 --key-cert "$crt" --payload-file "$W/ct" --out "$W/dec" >/dev/null ||
        fail "$key rsa-raw pad $pad"
    cmp -s "$W/block" "$W/dec" || fail "$key rsa-raw pad $pad: wrong block"
    head -c 10 /dev/urandom >"$W/short"
    rawc --pad "$pad" --op 0x08 --key-cert "$crt" --payload-file "$W/short" --expect-error 7 \
        >/dev/null || fail "$key rsa-raw with a short block must be a format error"
    # 0xA0 TLS decrypt: good padding gives the PMS ...
    { printf '\003\003'; head -c 46 /dev/urandom; } >"$W/pms"
    openssl pkeyutl -encrypt -certin -inkey "$crt" -in "$W/pms" -out "$W/ct"
    rawc --pad "$pad" --op 0xa0 --key-cert "$crt" --payload-file "$W/ct" --extra-hex 0303 \
        --out "$W/dec" >/dev/null || fail "$key tls-rsa-decrypt pad $pad"
    cmp -s "$W/pms" "$W/dec" || fail "$key tls-rsa-decrypt pad $pad: wrong PMS"
    # ... a wrong ClientHello version, bad padding and a wrong length all give 48 random bytes
    rawc --pad "$pad" --op 0xa0 --key-cert "$crt" --payload-file "$W/ct" --extra-hex 0301 \
        --out "$W/dec" >/dev/null || fail "$key tls-rsa-decrypt (version mismatch) must succeed"
    [ "$(size "$W/dec")" = 48 ] || fail "$key tls-rsa-decrypt (version mismatch): not 48 bytes"
    cmp -s "$W/pms" "$W/dec" && fail "$key tls-rsa-decrypt (version mismatch) returned the PMS"
    rawc --pad "$pad" --op 0xa0 --key-cert "$crt" --payload-file "$W/block" --extra-hex 0303 \
        --out "$W/dec" >/dev/null || fail "$key tls-rsa-decrypt (bad padding) must succeed"
    [ "$(size "$W/dec")" = 48 ] || fail "$key tls-rsa-decrypt (bad padding): not 48 bytes"
    rawc --pad "$pad" --op 0xa0 --key-cert "$crt" --payload-file "$W/short" --extra-hex 0303 \
        --out "$W/dec" >/dev/null || fail "$key tls-rsa-decrypt (short) must succeed"
    [ "$(size "$W/dec")" = 48 ] || fail "$key tls-rsa-decrypt (short): not 48 bytes"
    rawc --pad "$pad" --op 0xa0 --key-cert "$crt" --payload-file "$W/ct" --expect-error 7 \
        >/dev/null || fail "$key tls-rsa-decrypt without a version must be a format error"
}

for pad in 0 1024; do
    out=$(rawc --pad "$pad" --op ping --payload-hex 68656c6c6f) || fail "ping pad $pad"
    case $out in *"opcode=0xf2 len=5 payload=68656c6c6f"*) ;; *) fail "ping pad $pad: $out" ;; esac
    # every opcode on RSA-2048; the larger keys get one digest per family (keeps the test short)
    for key in rsa2048 rsa3072 rsa4096; do
        mds=$MDS pss="sha256 sha384 sha512"
        [ "$key" = rsa2048 ] || { mds=sha384; pss=sha512; }
        for md in $mds; do sign_verify "$key" rsa "$md" "$pad"; done
        for md in $pss; do sign_verify "$key" pss "$md" "$pad"; done
        [ "$key" = rsa2048 ] || [ "$pad" = 1024 ] && rsa_decrypts "$key" "$pad"
        digest sha256 "$W/msg" "$W/dgst"
        rawc --pad "$pad" --op 0x15 --key-cert "$PKI/keys/$key.crt" --payload-file "$W/dgst" \
            --expect-error 6 >/dev/null || fail "ECDSA on $key must be unexpected-opcode"
        rawc --pad "$pad" --op 0x18 --key-cert "$PKI/keys/$key.crt" --payload-file "$W/msg" \
            --expect-error 6 >/dev/null || fail "Ed25519 on $key must be unexpected-opcode"
    done
    pass "RSA PKCS#1 sign 0x02-0x07, PSS 0x35-0x37, decrypt 0x01/0x08, TLS decrypt 0xA0 on RSA-2048/3072/4096 (pad $pad)"
    for key in ecdsa-p256 ecdsa-p384 ecdsa-p521; do
        mds=$MDS
        [ "$key" = ecdsa-p256 ] || mds="sha256 sha512"
        for md in $mds; do sign_verify "$key" ecdsa "$md" "$pad"; done
        digest sha256 "$W/msg" "$W/dgst"
        rawc --pad "$pad" --op 0x05 --key-cert "$PKI/keys/$key.crt" --payload-file "$W/dgst" \
            --expect-error 6 >/dev/null || fail "RSA sign on $key must be unexpected-opcode"
        rawc --pad "$pad" --op 0x01 --key-cert "$PKI/keys/$key.crt" --payload-file "$W/dgst" \
            --expect-error 6 >/dev/null || fail "RSA decrypt on $key must be unexpected-opcode"
    done
    pass "ECDSA sign 0x12-0x17 on P-256/P-384/P-521 (pad $pad)"
    rawc --pad "$pad" --op 0x18 --key-cert "$PKI/keys/ed25519.crt" --payload-file "$W/msg" \
        --out "$W/sig" >/dev/null || fail "ed25519 sign pad $pad"
    openssl pkeyutl -verify -certin -inkey "$PKI/keys/ed25519.crt" -rawin -in "$W/msg" \
        -sigfile "$W/sig" >/dev/null || fail "ed25519 signature does not verify (pad $pad)"
    rawc --pad "$pad" --op 0x15 --key-cert "$PKI/keys/ed25519.crt" --payload-file "$W/dgst" \
        --expect-error 6 >/dev/null || fail "ECDSA on Ed25519 must be unexpected-opcode"
    pass "Ed25519 sign 0x18 (pad $pad)"
done

# Key ids: the SHA-256 of the SPKI as openssl computes it, and the SKI.
for key in rsa2048 ecdsa-p384 ed25519; do
    crt=$PKI/keys/$key.crt
    dig=$(openssl x509 -in "$crt" -noout -pubkey | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n')
    ski=$(openssl x509 -in "$crt" -noout -ext subjectKeyIdentifier | tail -n 1 | tr -d ' :' |
        tr 'A-F' 'a-f')
    openssl x509 -in "$crt" -outform DER -out "$W/leaf.der"
    for id in "--key-digest $dig" "--ski $ski" "--sni $key.example"; do
        # shellcheck disable=SC2086
        rawc --op 0xa2 $id --out "$W/chain" >/dev/null || fail "0xA2 for $key by $id"
        cmp -s "$W/chain" "$W/leaf.der" || fail "0xA2 for $key by $id: not the .crt chain"
    done
    digest sha256 "$W/msg" "$W/dgst"
    case $key in rsa*) op=0x05 ;; ecdsa*) op=0x15 ;; *) op=ping ;; esac
    if [ "$op" != ping ]; then
        rawc --op "$op" --ski "$ski" --payload-file "$W/dgst" >/dev/null || fail "sign by SKI ($key)"
        rawc --op "$op" --key-digest "$dig" --pad 1024 --payload-file "$W/dgst" >/dev/null ||
            fail "sign by digest ($key)"
    fi
done
rawc --op 0xa2 --sni nothing.example --expect-error 9 >/dev/null || fail "0xA2 unknown SNI must be 0x09"
pass "0xA2 certificate chain by digest, SKI and SNI equals the .crt file; unknown name is 0x09"

rawc --op 0xa3 --out "$W/list" >/dev/null || fail "0xA3 list keys"
[ "$(size "$W/list")" = $((7 * 32)) ] || fail "0xA3: expected 7 digests"
list=$(hex "$W/list")
for crt in "$PKI"/keys/*.crt; do
    dig=$(openssl x509 -in "$crt" -noout -pubkey | openssl pkey -pubin -outform DER |
        openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n')
    case $list in *"$dig"*) ;; *) fail "0xA3 lacks $(basename "$crt")" ;; esac
done
pass "0xA3 lists the 7 key ids"

# Pipelining: many requests in flight on one connection, answered by id.
digest sha256 "$W/msg" "$W/dgst"
rawc --op 0x15 --key-cert "$PKI/keys/ecdsa-p256.crt" --payload-file "$W/dgst" --count 500 \
    --inflight 100 | kw_grep "500 replies, 0 unexpected" || fail "500 pipelined ECDSA requests"
pass "500 pipelined requests, 100 in flight"

kill -0 "$KS_PID" 2>/dev/null || fail "key server died"
if grep -E "AddressSanitizer|runtime error|LeakSanitizer" "$KW_TMP/ks.log"; then
    fail "sanitizer report in the key server log"
fi
pass "key server alive and clean"
