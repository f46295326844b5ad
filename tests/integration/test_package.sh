#!/bin/bash
# The Debian package, tested installed rather than built: builds keyward_*.deb from a copy of the
# tree with dpkg-buildpackage (debhelper), checks it with lintian (no errors), installs it with
# `apt-get install ./keyward_*.deb`, then uses only what the package put on the system:
#   - the keyward system user, /etc/keyward root:keyward 0750 and its configs 0640 (conffiles);
#   - the units pass `systemd-analyze verify`;
#   - the INSTALLED key server runs as user keyward from /etc/keyward with its unit's ExecStart=
#     line (systemd is not PID 1 here, so the test runs that line itself with setpriv, with the
#     unit's User=, UMask= and no capabilities), and answers /health and /ready;
#   - the installed provider, found by name in OpenSSL's module directory (no `module =`), serves
#     an unmodified `openssl s_server` and a daemonised nginx (`user www-data`); curl completes
#     handshakes through both, and through the installed keyward-proxy run the same way;
#   - `apt-get purge keyward` leaves nothing: no files, no /etc/keyward, no units, no module, no
#     file owned by keyward (the user itself stays, as Debian policy asks: see debian/keyward.postrm).
# It needs root: it installs and purges a package, creates a system user and writes /etc/keyward.
# Without root, on a system without dpkg/apt, or when a keyward package is already installed (an
# operator's, which the test must not replace), it is skipped (exit 77, CTest's SKIP_RETURN_CODE).
. "$(dirname "$0")/lib.sh"

skip() {
    echo "SKIP: $*"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (installs and purges the package, creates the keyward user)"
[ -f /etc/debian_version ] && command -v apt-get >/dev/null || skip "not a Debian system"
for t in dpkg-buildpackage dh lintian nginx curl setpriv; do
    command -v "$t" >/dev/null || skip "$t is missing (scripts/install-deps.sh installs it)"
done
if grep -q 'install ok installed' <<<"$(dpkg-query -W -f='${Status}' keyward 2>/dev/null)"; then
    skip "a keyward package is already installed here; this test installs and purges its own"
fi

T0=$SECONDS
INSTALLED=0
NGINX_PID_FILE=""
pkg_cleanup() {
    if [ -n "$NGINX_PID_FILE" ] && [ -s "$NGINX_PID_FILE" ]; then
        kill "$(cat "$NGINX_PID_FILE")" 2>/dev/null || true
    fi
    kw_cleanup
    if [ "$INSTALLED" = 1 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q keyward >/dev/null 2>&1 || true
    fi
}
trap pkg_cleanup EXIT

# ---- build: dpkg-buildpackage in a copy of the tree (it writes debian/ and ../*.deb) ----
# KW_PACKAGE_DIR=DIR (a directory holding keyward_*.deb and *.changes from dpkg-buildpackage)
# tests those instead of building again.
SRC=$KW_TMP/src/keyward
mkdir -p "$SRC"
if [ -n "${KW_PACKAGE_DIR:-}" ]; then
    cp "$KW_PACKAGE_DIR"/*.deb "$KW_PACKAGE_DIR"/*.changes "$KW_PACKAGE_DIR"/*.buildinfo "$KW_TMP/src/"
elif git -C "$KW_SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
    # the working tree's files as they are now (committed or not), without build directories
    (cd "$KW_SOURCE_DIR" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$SRC" -xf -
else
    tar -C "$KW_SOURCE_DIR" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -C "$SRC" -xf -
fi
if [ -z "${KW_PACKAGE_DIR:-}" ]; then
    (cd "$SRC" && DEB_BUILD_OPTIONS="parallel=$(nproc) noddebs" dpkg-buildpackage -us -uc -b) \
        >"$KW_TMP/dpkg-buildpackage.log" 2>&1 ||
        fail "dpkg-buildpackage -us -uc -b: $(tail -20 "$KW_TMP/dpkg-buildpackage.log")"
fi
DEB=$(ls "$KW_TMP"/src/keyward_*.deb)
pass "dpkg-buildpackage -us -uc -b built $(cd "$KW_TMP/src" && ls ./*.deb | tr '\n' ' ')($((SECONDS - T0)) s)"

lintian --fail-on error "$KW_TMP"/src/*.changes \
    >"$KW_TMP/lintian.txt" 2>&1 || fail "lintian reports errors: $(cat "$KW_TMP/lintian.txt")"
pass "lintian: no errors ($(grep -c '^W:' "$KW_TMP/lintian.txt" || true) warnings)"

# ---- install ----
INSTALLED=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$DEB" \
    >"$KW_TMP/apt-install.log" 2>&1 || fail "apt-get install $DEB: $(tail -20 "$KW_TMP/apt-install.log")"
pass "apt-get install ./$(basename "$DEB")"

getent passwd keyward >/dev/null || fail "no keyward user after installing"
[ "$(getent passwd keyward | cut -d: -f7)" = /usr/sbin/nologin ] || fail "keyward has a login shell"
uid=$(id -u keyward)
[ "$uid" -lt 1000 ] || fail "keyward is not a system user (uid $uid)"
[ "$(stat -c '%U:%G %a' /etc/keyward)" = "root:keyward 750" ] ||
    fail "/etc/keyward is $(stat -c '%U:%G %a' /etc/keyward), not root:keyward 750"
for f in keyserver.yaml proxy.yaml; do
    [ "$(stat -c '%U:%G %a' /etc/keyward/$f)" = "root:keyward 640" ] ||
        fail "/etc/keyward/$f is $(stat -c '%U:%G %a' /etc/keyward/$f), not root:keyward 640"
    grep -q " /etc/keyward/$f " <<<"$(dpkg-query -W -f='${Conffiles}\n' keyward)" ||
        fail "/etc/keyward/$f is not a conffile"
done
MODDIR=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
[ -f "$MODDIR/keyward.so" ] || fail "keyward.so is not in OpenSSL's module directory $MODDIR"
UNIT_KS=/lib/systemd/system/keyward-keyserver.service
UNIT_PX=/lib/systemd/system/keyward-proxy.service
[ -f "$UNIT_KS" ] && [ -f "$UNIT_PX" ] || fail "the systemd units are not installed"
pass "user keyward (uid $uid, nologin), /etc/keyward root:keyward 0750, configs 0640 conffiles, units, $MODDIR/keyward.so"

if command -v systemd-analyze >/dev/null; then
    out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$UNIT_KS" "$UNIT_PX" 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
    pass "systemd-analyze verify: both units clean"
else
    echo "note: systemd-analyze is not installed; the units were not verified"
fi

# ---- configure /etc/keyward as an operator does ----
sh /usr/share/keyward/make-pki.sh "$KW_TMP/pki" >/dev/null || fail "installed make-pki.sh"
PKI=$KW_TMP/pki
KS=$(free_port)
KM=$(free_port)
install -o root -g keyward -m 0640 "$PKI/keyserver.crt" "$PKI/keyserver.key" /etc/keyward/
install -o root -g keyward -m 0640 "$PKI/ca.crt" /etc/keyward/edge-ca.crt
install -o root -g keyward -m 0640 "$PKI/ca.crt" /etc/keyward/keyserver-ca.crt
install -o root -g keyward -m 0640 "$PKI/edge.crt" "$PKI/edge.key" /etc/keyward/
install -o root -g keyward -m 0640 "$PKI"/keys/* /etc/keyward/keys/
install -o root -g keyward -m 0644 "$PKI"/certs/* /etc/keyward/certs/
sed -i -e "s/^listen: .*/listen: \"127.0.0.1:$KS\"/" -e "s/^metrics: .*/metrics: \"127.0.0.1:$KM\"/" \
    -e 's/^workers: .*/workers: 2/' /etc/keyward/keyserver.yaml

# run_unit UNIT NAME: runs the unit's ExecStart= line in the background as its User=/Group=, with
# its UMask=, no capabilities and no new privileges (what systemd would do, minus the namespaces).
run_unit() {
    local unit=$1 name=$2 exec user group umask_
    exec=$(sed -n 's/^ExecStart=//p' "$unit")
    user=$(sed -n 's/^User=//p' "$unit")
    group=$(sed -n 's/^Group=//p' "$unit")
    umask_=$(sed -n 's/^UMask=//p' "$unit")
    [ -n "$exec" ] && [ -n "$user" ] || fail "$unit has no ExecStart= or User="
    # shellcheck disable=SC2086 # the unit's command line, split as systemd splits it (no quotes)
    start_bg "$name" sh -c "umask ${umask_:-0022}; ulimit -c 0; cd /; exec setpriv --reuid=$user \
        --regid=$group --init-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- $exec"
}

out=$(runuser -u keyward -- /usr/bin/keyward-keyserver --check-config \
    --config /etc/keyward/keyserver.yaml 2>&1) || fail "keyward-keyserver --check-config: $out"
pass "keyward-keyserver --check-config as keyward: $(echo "$out" | tail -1)"

run_unit "$UNIT_KS" keyserver
KS_PID=$LAST_PID
wait_port "$KS" 20 || fail "the installed key server did not start from $UNIT_KS"
[ "$(stat -c %U /proc/$KS_PID)" = keyward ] || fail "the key server does not run as keyward"
grep -q '^CapEff:\s*0*$' "/proc/$KS_PID/status" || fail "the key server has capabilities"
! grep -q 'accessible by group' "$KW_TMP/keyserver.log" ||
    fail "the package's key layout (root:keyward 0640) is warned about: $(grep -m1 accessible "$KW_TMP/keyserver.log")"
pass "the installed key server runs as keyward from /etc/keyward: $(sed -n 's/^ExecStart=//p' "$UNIT_KS")"
[ "$(metrics_get "$KM" /health)" = 200 ] || fail "key server /health: $(cat "$KW_TMP/body")"
[ "$(ready_code "$KM")" = 200 ] || fail "key server /ready: $(cat "$KW_TMP/body")"
pass "key server /health and /ready answer 200"

# ---- the installed provider: openssl.cnf with no `module =`, an unmodified openssl s_server ----
sed -i -e "s/^servers = .*/servers = 127.0.0.1:$KS/" /etc/keyward/openssl.cnf
! grep -q '^module' /etc/keyward/openssl.cnf || fail "/etc/keyward/openssl.cnf names a module"
/usr/bin/keyward stub --cert /etc/keyward/certs/ecdsa-p256.crt --out /etc/keyward/certs/ecdsa-p256.stub ||
    fail "keyward stub"
/usr/bin/keyward stub --cert /etc/keyward/certs/rsa2048.crt --out /etc/keyward/certs/rsa2048.stub ||
    fail "keyward stub"
SP=$(free_port)
start_bg s_server env -u OPENSSL_MODULES OPENSSL_CONF=/etc/keyward/openssl.cnf openssl s_server \
    -accept "127.0.0.1:$SP" -cert /etc/keyward/certs/ecdsa-p256.crt \
    -key /etc/keyward/certs/ecdsa-p256.stub -www -naccept 1000
wait_port "$SP" 20 || fail "openssl s_server with the installed provider did not start"
curl_expect "openssl s_server + installed keyward.so, ECDSA" "$SP" 'HTTP/1\.[01] 200|s_server'

# ---- nginx, daemonised, workers as www-data, the same openssl.cnf ----
NG=$KW_TMP/nginx
NP=$(free_port)
mkdir -p "$NG"
write_nginx_conf "$NG" 2 "$NG/error.log" "
    server {
        listen 127.0.0.1:$NP ssl;
        server_name localhost;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate /etc/keyward/certs/rsa2048.crt;
        ssl_certificate_key /etc/keyward/certs/rsa2048.stub;
        location / { return 200 \"nginx via the installed keyward.so\\n\"; }
    }"
sed -i 's/^daemon off;/daemon on;/' "$NG/nginx.conf"
grep -q '^user www-data;' "$NG/nginx.conf" || fail "nginx.conf does not drop to www-data"
NGINX_PID_FILE=$NG/nginx.pid
OPENSSL_CONF=/etc/keyward/openssl.cnf nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log" \
    >"$KW_TMP/nginx.log" 2>&1 || fail "nginx did not start: $(cat "$KW_TMP/nginx.log" "$NG/error.log")"
wait_port "$NP" 20 || fail "nginx did not listen: $(cat "$NG/error.log")"
grep -qx www-data <<<"$(ps -o user= --ppid "$(cat "$NGINX_PID_FILE")")" || fail "nginx workers are not www-data"
for v in 1.2 1.3; do
    curl_expect "nginx (daemon, workers www-data) + installed keyward.so, RSA, TLS $v" "$NP" \
        'nginx via the installed keyward.so' --tlsv"$v" --tls-max "$v"
done
kill "$(cat "$NGINX_PID_FILE")"
NGINX_PID_FILE=""

# ---- the installed keyward-proxy, its unit's command line as keyward ----
if [ -x "$KW_TESTS/kw_backend" ]; then
    BP=$(free_port)
    PP=$(free_port)
    start_backend backend "$BP"
    cat >/etc/keyward/proxy.yaml <<YAML
listen: "127.0.0.1:$PP"
backend: "127.0.0.1:$BP"
certs:
  - /etc/keyward/certs/ecdsa-p256.crt
  - {cert: /etc/keyward/certs/rsa2048.crt, key: /etc/keyward/certs/rsa2048.stub}
keyservers: ["127.0.0.1:$KS"]
client_cert: /etc/keyward/edge.crt
client_key: /etc/keyward/edge.key
ca: /etc/keyward/keyserver-ca.crt
threads: 2
YAML
    run_unit "$UNIT_PX" proxy
    wait_port "$PP" 20 || fail "the installed keyward-proxy did not start from $UNIT_PX"
    curl_expect "installed keyward-proxy as keyward (its unit's ExecStart)" "$PP" 'kw_backend backend'
fi

# ---- purge: nothing left ----
kw_stop_all() {
    local pid
    for pid in "${KW_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${KW_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    KW_PIDS=()
}
kw_stop_all
files=$(dpkg-query -L keyward | while read -r f; do [ -f "$f" ] && echo "$f"; done)
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q keyward >"$KW_TMP/apt-purge.log" 2>&1 ||
    fail "apt-get purge keyward: $(tail -20 "$KW_TMP/apt-purge.log")"
INSTALLED=0
! grep -q ' installed' <<<"$(dpkg-query -W -f='${Status}' keyward 2>/dev/null || true)" ||
    fail "keyward is still known to dpkg: $(dpkg-query -W -f='${Status}' keyward)"
left=""
for f in $files /etc/keyward /var/log/keyward /run/keyward "$MODDIR/keyward.so" "$UNIT_KS" "$UNIT_PX" \
    /etc/systemd/system/multi-user.target.wants/keyward-keyserver.service; do
    [ ! -e "$f" ] || left="$left $f"
done
[ -z "$left" ] || fail "left after apt-get purge:$left"
owned=$(find /etc /var /usr /lib /run /opt -xdev -user keyward 2>/dev/null | head -5)
[ -z "$owned" ] || fail "files owned by keyward left after purge: $owned"
pass "apt-get purge keyward: $(echo "$files" | wc -l) package files, /etc/keyward and the keys gone, nothing owned by keyward ($((SECONDS - T0)) s in all)"
