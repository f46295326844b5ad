#!/bin/sh
# Installs the Debian 12 packages keyward needs to build, test and run its demo, when missing.
# Runs `apt-get update` once and `apt-get install -y` only if something is absent (needs root).
set -eu
PACKAGES="build-essential cmake pkg-config libssl-dev openssl libuv1-dev libcmocka-dev libyaml-dev
 libp11-kit-dev softhsm2 opensc gnutls-bin libmicrohttpd-dev curl nginx haproxy nghttp2-client clang
 libclang-rt-14-dev valgrind gdb python3 python3-cryptography procps iproute2 psmisc apache2 stunnel4 lighttpd
 lighttpd-mod-openssl postfix nodejs debhelper dpkg-dev fakeroot lintian libnginx-mod-stream"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi
echo "install-deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: these Debian packages are missing:$missing" >&2
    echo "install-deps: run as root, or: sudo apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix without a system configuration (no /etc/postfix/main.cf, no system MTA started): the
# tests run their own instance from their own config directory.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# No service starts during the installation (policy-rc.d, honoured by invoke-rc.d and
# deb-systemd-invoke): Apache and nginx would both claim port 80 and fail the second package.
own_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
fi
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing || rc=$?
[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
[ "${rc:-0}" = 0 ] || exit "$rc"
# Stop any that started anyway (a policy-rc.d of the machine allowed it): tests run their own.
for svc in nginx haproxy apache2 lighttpd postfix; do
    if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" 2>/dev/null || true; fi
    if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
exit 0
