#!/bin/sh
# Makes a complete test PKI in DIR (default ./pki), with openssl only:
#   ca.crt/ca.key              CA that signs the key server's and the edges' TLS identities
#   keyserver.crt/.key         key server identity (SAN localhost, 127.0.0.1, ::1); server and
#                              client auth, as a key server presents it to its --upstream too
#   edge.crt/.key              an edge (proxy / provider / CLI) client identity, CN=edge
#   edge2.crt/.key             a second edge identity, CN=edge2 (authorisation tests)
#   rogue-ca.crt, rogue.crt/.key  an identity from another CA (must be refused)
#   site-ca.crt/.key           CA that signs the site certificates clients see
#   keys/<name>.key + .crt     site keys (only the key server gets these) and their chains:
#       rsa2048 rsa3072 rsa4096 ecdsa-p256 ecdsa-p384 ecdsa-p521 ed25519 (CN/SAN localhost)
#   certs/<name>.crt           the same site certificates, for edges (no keys)
# Usage: make-pki.sh [--force] [DIR]
# Refuses to write into DIR when any of these files is already there (a key server still using
# the old PKI would refuse every client made with the new one), unless --force is given.
set -eu
PROG=${KW_PKI_PROG:-make-pki.sh} # `keyward keygen` runs this script and names itself
FORCE=0
if [ "${1:-}" = --force ]; then
    FORCE=1
    shift
fi
DIR=${1:-pki}
SITES="rsa2048 rsa3072 rsa4096 ecdsa-p256 ecdsa-p384 ecdsa-p521 ed25519"

if [ "$FORCE" = 0 ]; then
    first="" others=0
    set -- # the file names the PKI consists of
    for f in ca rogue-ca site-ca keyserver edge edge2 rogue; do
        set -- "$@" "$f.crt" "$f.key"
    done
    for s in $SITES; do
        set -- "$@" "keys/$s.key" "keys/$s.crt" "certs/$s.crt"
    done
    for f in "$@"; do
        [ -e "$DIR/$f" ] || continue
        if [ -z "$first" ]; then first=$DIR/$f; else others=$((others + 1)); fi
    done
    if [ -n "$first" ]; then
        more=""
        [ "$others" = 0 ] || more=" and $others other file(s)"
        echo "$PROG: refusing to overwrite $first$more of an existing PKI:" \
            "a key server using it would refuse clients with the new certificates." \
            "Pass --force to replace the whole PKI, or choose another directory." >&2
        exit 1
    fi
fi
mkdir -p "$DIR/keys" "$DIR/certs"
cd "$DIR"
DAYS=825
umask 077

ext_file=$(mktemp)
trap 'rm -f "$ext_file"' EXIT
cat > "$ext_file" <<EXT
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
[site]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:localhost,DNS:\${ENV::KW_SITE_NAME},IP:127.0.0.1
subjectKeyIdentifier = hash
EXT

make_ca() { # name cn
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$DAYS" \
        -subj "/O=keyward test/CN=$2" -keyout "$1.key" -out "$1.crt" 2>/dev/null
}

issue() { # name cn ca section keyalg-args...
    name=$1 cn=$2 ca=$3 section=$4
    shift 4
    openssl req -new -nodes -newkey "$@" -subj "/O=keyward test/CN=$cn" \
        -keyout "$name.key" -out "$name.csr" 2>/dev/null
    KW_SITE_NAME=$cn openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" \
        -CAcreateserial -days "$DAYS" -extfile "$ext_file" -extensions "$section" \
        -out "$name.crt" 2>/dev/null
    rm -f "$name.csr"
}

make_ca ca "keyward test CA"
make_ca rogue-ca "rogue CA"
make_ca site-ca "keyward test site CA"
issue keyserver localhost ca server ec -pkeyopt ec_paramgen_curve:P-256
issue edge edge ca client ec -pkeyopt ec_paramgen_curve:P-256
issue edge2 edge2 ca client ec -pkeyopt ec_paramgen_curve:P-256
issue rogue edge rogue-ca client ec -pkeyopt ec_paramgen_curve:P-256

site() { # name keyalg-args...
    site_name=$1
    shift
    issue "keys/$site_name" "$site_name.example" site-ca site "$@"
    cp "keys/$site_name.crt" "certs/$site_name.crt"
}
site rsa2048 rsa:2048
site rsa3072 rsa:3072
site rsa4096 rsa:4096
site ecdsa-p256 ec -pkeyopt ec_paramgen_curve:P-256
site ecdsa-p384 ec -pkeyopt ec_paramgen_curve:P-384
site ecdsa-p521 ec -pkeyopt ec_paramgen_curve:P-521
site ed25519 ed25519
rm -f ./*.srl keys/*.srl
chmod 644 ./*.crt certs/*.crt keys/*.crt
echo "make-pki: PKI written to $(pwd)"
