#!/bin/bash
# Postfix 3.7 smtpd with STARTTLS, as Debian's master.cf runs it (chrooted smtpd, privileges
# dropped to postfix), in its own instance (`postfix -c DIR start`, daemonised; the system's
# Postfix is untouched). The RSA and ECDSA certificates carry key stubs (smtpd_tls_key_file /
# smtpd_tls_eckey_file); the edge's credentials are root-only. First the trap: the master clears
# the environment of its children, so without OPENSSL_CONF in import_environment smtpd cannot
# read the stubs and, with smtpd_tls_security_level = may, answers STARTTLS with 454 (senders
# then deliver in plain text). With it, every client x key x TLS mode handshake is checked, and audited (lib-deploy.sh).
. "$(dirname "$0")/lib-deploy.sh"

command -v postfix >/dev/null || fail "postfix is not installed (scripts/install-deps.sh)"
deploy_setup
RSA_PORT=$(free_port)
EC_PORT=$(free_port)
PF=$KW_TMP/postfix # config directory
mkdir -p "$PF" "$KW_TMP/postfix-queue" "$KW_TMP/postfix-data"
chown postfix "$KW_TMP/postfix-data"
# Debian's master.cf with the smtpd line on our ports (one per certificate type: a client that
# offers both gets the ECDSA one; the RSA port sees only RSA certificates).
sed -e "s/^smtp      inet .*/127.0.0.1:$RSA_PORT inet n - y - - smtpd -o smtpd_tls_eccert_file= -o smtpd_tls_eckey_file=\n127.0.0.1:$EC_PORT inet n - y - - smtpd -o smtpd_tls_cert_file= -o smtpd_tls_key_file=/" \
    /usr/share/postfix/master.cf.dist >"$PF/master.cf"
cat >"$PF/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $KW_TMP/postfix-queue
data_directory = $KW_TMP/postfix-data
myhostname = localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = $KW_TMP/postfix.log
maillog_file_prefixes = $KW_TMP
smtpd_tls_security_level = may
alias_maps =
alias_database =
notify_classes =
smtpd_peername_lookup = no
smtpd_tls_cert_file = $SITE/rsa2048.crt
smtpd_tls_key_file = $SITE/rsa2048.stub
smtpd_tls_eccert_file = $SITE/ecdsa-p256.crt
smtpd_tls_eckey_file = $SITE/ecdsa-p256.stub
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_loglevel = 1
CONF
deploy_at_exit postfix -c "$PF" abort
# As a systemd unit would start it: OPENSSL_CONF in the environment of `postfix start`.
env OPENSSL_CONF="$PROV_CNF" LD_PRELOAD="$(kw_provider_preload)" postfix -c "$PF" start \
    >"$KW_TMP/postfix-start.log" 2>&1 || fail "postfix start failed"
wait_port "$RSA_PORT" 15 || fail "Postfix does not listen on $RSA_PORT"
wait_port "$EC_PORT" 5 || fail "Postfix does not listen on $EC_PORT"

# starttls PORT: EHLO, then STARTTLS; prints the answer to STARTTLS ("CODE text").
starttls() {
    python3 - "$1" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20)
s.ehlo("client.test")
code, msg = s.docmd("STARTTLS")
print(code, msg.decode())
s.close()
PY
}
out=$(starttls "$RSA_PORT") || fail "STARTTLS: $out"
[[ $out == "454 4.7.0 TLS not available due to local problem" ]] ||
    fail "without OPENSSL_CONF in import_environment, expected STARTTLS refused with 454: $out"
wait_for_line "$KW_TMP/postfix.log" 'cannot get RSA private key from file.*disabling TLS support' \
    "no 'disabling TLS support' in the Postfix log without OPENSSL_CONF in import_environment"
pass "without import_environment OPENSSL_CONF: STARTTLS answered '$out' (senders fall back to plain text)"

postconf -c "$PF" -e "import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C OPENSSL_CONF=$PROV_CNF $([ -n "$(kw_provider_preload)" ] && echo "LD_PRELOAD=$(kw_provider_preload) ASAN_OPTIONS=$ASAN_OPTIONS")" ||
    fail "postconf -e import_environment"
# The master cleans its environment once, when it starts: `postfix reload` is not enough.
postfix -c "$PF" stop >>"$KW_TMP/postfix-start.log" 2>&1 || fail "postfix stop failed"
postfix -c "$PF" start >>"$KW_TMP/postfix-start.log" 2>&1 || fail "postfix start (2) failed"
wait_port "$RSA_PORT" 15 || fail "Postfix does not listen on $RSA_PORT after its restart"
out=$(starttls "$RSA_PORT") || fail "STARTTLS: $out"
[[ $out == 220* ]] || fail "STARTTLS refused with OPENSSL_CONF imported: $out"
pass "import_environment = ... OPENSSL_CONF=...: STARTTLS accepted ($out)"
deploy_matrix postfix smtp "$RSA_PORT" "$EC_PORT" "250 2.0.0 Ok"
ps -o user= -C smtpd | kw_grep -x postfix || fail "no smtpd runs as postfix"
pass "smtpd runs as postfix"
