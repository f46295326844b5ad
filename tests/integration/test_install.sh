#!/bin/bash
# `make install` (cmake --install) into a DESTDIR, as a packager runs it: the layout
# (GNUInstallDirs), keyward.so in OpenSSL's module directory and loadable there without a
# `module =` line, libkeyward.so.N exporting only the public API, its public headers (and not the
# internal ones) and keyward.pc, with which a program outside the tree compiles, links and runs;
# the man pages, example configs and systemd units pointing at the installed programs.
. "$(dirname "$0")/lib.sh"
if [ "${KW_SANITIZE:-OFF}" = ON ]; then
    echo "skip: ASan builds (the installed library is instrumented, so the program built against it with pkg-config would need the sanitizer runtime; make test checks the install)"
    exit 0
fi

D=$KW_TMP/destdir
# The paths configured for this build (CMAKE_INSTALL_PREFIX, default /usr/local; the package
# builds with /usr); the units and keyward.so are placed at configure time.
cache() { sed -n "s/^$1:[A-Z]*=//p" "$KW_BUILD_DIR/CMakeCache.txt"; }
P=$(cache CMAKE_INSTALL_PREFIX)
P=${P#/}
DESTDIR=$D cmake --install "$KW_BUILD_DIR" >"$KW_TMP/install.log" 2>&1 ||
    fail "cmake --install: $(tail -5 "$KW_TMP/install.log")"
MODDIR=$(cache KW_OSSL_MODULESDIR)
UNITDIR=$(cache KW_SYSTEMD_UNITDIR)
UNITDIR=${UNITDIR#/}
want=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
[ "$MODDIR" = "$want" ] || fail "keyward.so goes to '$MODDIR', openssl version -m says '$want'"
LIBDIR=$P/$(cache CMAKE_INSTALL_LIBDIR)
for f in $P/bin/keyward $P/bin/keyward-keyserver $P/bin/keyward-proxy \
    "${MODDIR#/}/keyward.so" \
    "$LIBDIR/libkeyward.so" "$LIBDIR/libkeyward.so.0" "$LIBDIR/pkgconfig/keyward.pc" \
    $P/include/keyward/client.h $P/include/keyward/protocol.h $P/include/keyward/error.h \
    $P/share/man/man1/keyward.1 $P/share/man/man5/keyward.so.5 \
    $P/share/man/man8/keyward-keyserver.8 $P/share/man/man8/keyward-proxy.8 \
    $P/share/doc/keyward/examples/keyserver.yaml $P/share/doc/keyward/examples/proxy.yaml \
    $P/share/keyward/make-pki.sh $UNITDIR/keyward-keyserver.service \
    $UNITDIR/keyward-proxy.service; do
    [ -e "$D/$f" ] || fail "make install did not install /$f"
done
for f in tls.h log.h stub.h keyid.h version.h; do
    [ ! -e "$D/$P/include/keyward/$f" ] || fail "internal header $f is installed"
done
so=$(readlink "$D/$LIBDIR/libkeyward.so.0")
[[ "$so" == libkeyward.so.0.* ]] || fail "libkeyward.so.0 -> '$so', not a versioned file"
grep -q 'SONAME *libkeyward.so.0$' <<<"$(objdump -p "$D/$LIBDIR/libkeyward.so.0")" ||
    fail "libkeyward's SONAME is not libkeyward.so.0"
grep -q "ExecStart=/$P/bin/keyward-keyserver " "$D/$UNITDIR/keyward-keyserver.service" ||
    fail "the installed unit does not start /$P/bin/keyward-keyserver"
pass "make install: layout under DESTDIR, keyward.so in $MODDIR, libkeyward.so.0, units"

# Exported symbols: exactly the functions of the installed headers (nothing of src/common).
nm -D --defined-only "$D/$LIBDIR/libkeyward.so.0" | awk '$2 == "T" {print $3}' | sed 's/@.*//' |
    sort >"$KW_TMP/exported"
cat "$D"/$P/include/keyward/*.h | grep -vE '^(static|typedef) ' | grep -oE '^[a-z][a-z0-9_ *]* \**kw_[a-z_]+\(' |
    grep -oE 'kw_[a-z_]+' | sort -u >"$KW_TMP/declared"
extra=$(comm -23 "$KW_TMP/exported" "$KW_TMP/declared" | tr '\n' ' ')
[ -z "$extra" ] || fail "libkeyward exports functions no installed header declares: $extra"
lacking=$(comm -13 "$KW_TMP/exported" "$KW_TMP/declared" | tr '\n' ' ')
[ -z "$lacking" ] || fail "installed headers declare functions libkeyward does not export: $lacking"
pass "libkeyward exports the $(wc -l <"$KW_TMP/exported") functions of its headers and nothing else"

# A program outside the tree, built with pkg-config against the installed files only.
cat >"$KW_TMP/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <keyward/client.h>
#include <keyward/error.h>
int main(void)
{
    kw_client_config_t cfg;
    kw_client_t *c = NULL;
    char err[256] = "";
    memset(&cfg, 0, sizeof(cfg));
    int rc = kw_client_new(&cfg, &c, err, sizeof(err));
    printf("%d %s | %s\n", rc, kw_strerror(rc), err);
    return rc == KW_OK ? 1 : 0;
}
C
sys_pc=$(pkg-config --variable=pc_path pkg-config)
export PKG_CONFIG_SYSROOT_DIR=$D PKG_CONFIG_LIBDIR=$D/$LIBDIR/pkgconfig:$sys_pc
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o "$KW_TMP/app" "$KW_TMP/app.c" $(pkg-config --cflags --libs keyward) \
    2>"$KW_TMP/cc.log" || fail "a program does not build with pkg-config keyward: $(cat "$KW_TMP/cc.log")"
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
out=$(LD_LIBRARY_PATH=$D/$LIBDIR "$KW_TMP/app") || fail "the pkg-config program: $out"
libs=$(LD_LIBRARY_PATH=$D/$LIBDIR ldd "$KW_TMP/app") # not piped into grep -q: SIGPIPE + pipefail
grep -q "libkeyward.so.0 => $D/$LIBDIR/libkeyward.so.0" <<<"$libs" ||
    fail "the program is not linked to the installed libkeyward.so.0"
pass "a program builds with pkg-config keyward and runs on libkeyward.so.0 (kw_client_new: $out)"

# The installed provider, found by OpenSSL by name in its module directory (no `module =`).
{
    openssl_conf_providers
    echo "activate = 1"
} >"$KW_TMP/openssl.cnf"
out=$(OPENSSL_MODULES=$D$MODDIR OPENSSL_CONF=$KW_TMP/openssl.cnf openssl list -providers 2>&1) ||
    fail "openssl with keyward and no module line: $out"
grep -q '^  keyward' <<<"$out" || fail "keyward not listed by openssl list -providers: $out"
pass "OpenSSL loads keyward.so from its module directory with no module = line"

# The installed keyward-proxy finds the installed provider by name (no ../lib/keyward.so next to
# it): OpenSSL looks in its module directory (here the DESTDIR's, through OPENSSL_MODULES).
make_pki
KS=$(free_port)
start_keyserver ks "$KS"
out=$(OPENSSL_MODULES=$D$MODDIR "$D/$P/bin/keyward-proxy" --check-config \
    --cert "$PKI/certs/ecdsa-p256.crt" --backend 127.0.0.1:9 --keyserver "127.0.0.1:$KS" \
    --client-cert "$PKI/edge.crt" --client-key "$PKI/edge.key" --ca "$PKI/ca.crt" 2>&1) ||
    fail "the installed keyward-proxy with the provider from the module directory: $out"
pass "the installed keyward-proxy loads keyward.so from OpenSSL's module directory by name"
