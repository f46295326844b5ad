#!/bin/sh
# keyward demo (what `make demo` and `keyward demo` run): the whole system on loopback.
#   1. makes a fresh test PKI in a temporary directory (keyward keygen);
#   2. gives the site private keys to the key server only, and the edge only certificates plus
#      its own mutual-TLS identity;
#   3. starts keyward-keyserver on a free loopback port;
#   4. as the edge, with the keyward CLI: pings the key server, signs with every algorithm and
#      key type and verifies every signature with openssl, decrypts what openssl encrypted to the
#      RSA public key, and runs a short benchmark;
#   5. prints a summary, stops the key server, and exits 0 only if everything verified.
# Usage: sh scripts/demo.sh [BUILD_DIR]   (default: build)
set -u

BUILD=${1:-build}
BIN=$(cd "$BUILD/bin" 2>/dev/null && pwd) || {
    echo "demo: no $BUILD/bin: build first (make build), or pass the build directory" >&2
    exit 1
}
for b in keyward keyward-keyserver; do
    if [ ! -x "$BIN/$b" ]; then
        echo "demo: $BIN/$b is missing: build it first (make build)" >&2
        exit 1
    fi
done
command -v openssl >/dev/null 2>&1 || { echo "demo: needs the openssl command" >&2; exit 1; }

T=$(mktemp -d /tmp/keyward-demo.XXXXXX)
KS_PID=""
cleanup() {
    if [ -n "$KS_PID" ]; then
        kill "$KS_PID" 2>/dev/null
        wait "$KS_PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
say() { printf '%s\n' "$*"; }
bad() {
    say "  FAILED: $*"
    FAILED=$((FAILED + 1))
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
        echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
}

say "== keyward demo: TLS keys live on the key server, never on the edge"
say ""
say "-- 1. a fresh PKI (keyward keygen) in $T/pki"
"$BIN/keyward" keygen --out "$T/pki" >/dev/null || { say "demo: keygen failed" >&2; exit 1; }

# The key server gets the site keys; the edge gets certificates and its own TLS identity only.
mkdir -p "$T/keyserver" "$T/edge"
cp -r "$T/pki/keys" "$T/keyserver/keys"
cp "$T/pki/keyserver.crt" "$T/pki/keyserver.key" "$T/pki/ca.crt" "$T/keyserver/"
cp -r "$T/pki/certs" "$T/edge/certs"
cp "$T/pki/edge.crt" "$T/pki/edge.key" "$T/pki/ca.crt" "$T/edge/"
rm -rf "$T/pki"
say "   key server holds: $(cd "$T/keyserver/keys" && ls -- *.key | tr '\n' ' ')"
say "   edge holds:       $(cd "$T/edge" && ls certs/*.crt | wc -l | tr -d ' ') site certificates" \
    "+ edge.crt/edge.key (its client identity), no site private key"

say ""
say "-- 2. keyward-keyserver on loopback"
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    "$BIN/keyward-keyserver" --listen "127.0.0.1:$PORT" --cert "$T/keyserver/keyserver.crt" \
        --key "$T/keyserver/keyserver.key" --ca "$T/keyserver/ca.crt" \
        --keys "$T/keyserver/keys" --enable-op rsa-decrypt >"$T/keyserver.log" 2>&1 &
    KS_PID=$!
    sleep 0.2
    kill -0 "$KS_PID" 2>/dev/null && break
    wait "$KS_PID" 2>/dev/null
    KS_PID=""
done
[ -n "$KS_PID" ] || { say "demo: the key server did not start:" >&2; cat "$T/keyserver.log" >&2; exit 1; }

# The edge side: every CLI call runs in the edge directory, with only what an edge has.
cd "$T/edge" || exit 1
edge() {
    "$BIN/keyward" "$@" --server "127.0.0.1:$PORT" --cert edge.crt --key edge.key --ca ca.crt
}
ready=0
for _ in $(seq 1 50); do
    if edge ping >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.2
done
[ "$ready" = 1 ] || { say "demo: the key server does not answer:" >&2; cat "$T/keyserver.log" >&2; exit 1; }
say "   listening on 127.0.0.1:$PORT (pid $KS_PID), $(grep -c 'loaded key' "$T/keyserver.log") keys loaded"

say ""
say "-- 3. keyward ping (mutual TLS: the edge presents edge.crt, checks the server against ca.crt)"
edge ping --count 3 | sed 's/^/   /' || bad "ping"

say ""
say "-- 4. keyward sign, every algorithm x key type; each signature checked by openssl"
head -c 4096 /dev/urandom >message.bin
SIGNED=0
for key in rsa2048 rsa3072 rsa4096 ecdsa-p256 ecdsa-p384 ecdsa-p521 ed25519; do
    openssl x509 -in "certs/$key.crt" -pubkey -noout >"$key.pub"
    case $key in
    rsa*) algs="rsa-pkcs1-sha1 rsa-pkcs1-sha256 rsa-pkcs1-sha384 rsa-pkcs1-sha512 rsa-pss-sha256 rsa-pss-sha384 rsa-pss-sha512" ;;
    ecdsa*) algs="ecdsa-sha256 ecdsa-sha384 ecdsa-sha512" ;;
    *) algs="ed25519" ;;
    esac
    for alg in $algs; do
        if ! edge sign --alg "$alg" --in message.bin --out sig.bin --key-cert "certs/$key.crt" 2>err.txt; then
            bad "$key $alg: $(cat err.txt)"
            continue
        fi
        md=${alg##*-}
        case $alg in
        ed25519) openssl pkeyutl -verify -pubin -inkey "$key.pub" -rawin -in message.bin \
            -sigfile sig.bin >/dev/null 2>&1 ;;
        rsa-pss-*) openssl dgst "-$md" -verify "$key.pub" -sigopt rsa_padding_mode:pss \
            -sigopt rsa_pss_saltlen:digest -signature sig.bin message.bin >/dev/null 2>&1 ;;
        *) openssl dgst "-$md" -verify "$key.pub" -signature sig.bin message.bin >/dev/null 2>&1 ;;
        esac
        if [ $? -eq 0 ]; then
            printf '   %-11s %-17s %4s-byte signature   verified by openssl\n' "$key" "$alg" \
                "$(wc -c <sig.bin | tr -d ' ')"
            SIGNED=$((SIGNED + 1))
        else
            bad "$key $alg: openssl rejects the signature"
        fi
    done
done

say ""
say "-- 5. keyward decrypt: openssl encrypts a secret to the RSA public key; the key server decrypts"
say "   (plain RSA decryption, 0x01, is off unless enabled: this key server runs with"
say "   --enable-op rsa-decrypt; TLS edges use 0xA0/0xA1, which are on by default)"
DECRYPTED=0
for key in rsa2048 rsa3072 rsa4096; do
    openssl rand -hex 24 >secret.txt
    openssl pkeyutl -encrypt -pubin -inkey "$key.pub" -in secret.txt -out secret.enc 2>/dev/null
    if edge decrypt --in secret.enc --out secret.dec --key-cert "certs/$key.crt" 2>err.txt &&
        cmp -s secret.txt secret.dec; then
        say "   $key: $(wc -c <secret.enc | tr -d ' ')-byte ciphertext -> '$(cat secret.dec)' (matches)"
        DECRYPTED=$((DECRYPTED + 1))
    else
        bad "$key decrypt: $(cat err.txt)"
    fi
done

say ""
say "-- 6. keyward bench, 1 s each, 32 requests in flight over one connection"
for spec in "ecdsa-sha256 ecdsa-p256" "rsa-pkcs1-sha256 rsa2048" "ed25519 ed25519"; do
    set -- $spec
    line=$(edge bench --alg "$1" --key-cert "certs/$2.crt" --inflight 32 --seconds 1 2>err.txt) ||
        bad "bench $1: $(cat err.txt)"
    ops=$(printf '%s\n' "$line" | sed -n 's/.*ops_per_sec=\([0-9.]*\).*p50_ms=\([0-9.]*\).*/\1 ops\/s, median latency \2 ms/p')
    printf '   %-17s %s\n' "$1" "$ops"
done

say ""
say "-- 7. summary"
say "   $SIGNED signatures and $DECRYPTED decryptions made by the key server, every one checked with openssl."
say "   Private keys on the edge side (where the keyward CLI ran):" \
    "$(cd "$T/edge" && find . -name '*.key' | sed 's|^\./||' | tr '\n' ' ')(its own TLS identity)."
say "   The site keys never left the key server."
kill "$KS_PID" 2>/dev/null
wait "$KS_PID" 2>/dev/null
KS_PID=""
say "   key server stopped."
if [ "$FAILED" -ne 0 ]; then
    say "demo: $FAILED check(s) FAILED"
    exit 1
fi
say "demo: all checks passed"
exit 0
