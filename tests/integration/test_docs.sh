#!/bin/bash
# Docs that run as written: every ```sh block of README.md and docs/*.md runs with /bin/sh, in
# file order, in a scratch directory that looks like the repository's top directory (build/ is
# this build, examples/ and scripts/ the sources), so a command that stops working fails
# `make test`. Blocks that cannot run here say so in their first line ("# not run by the docs
# test: REASON"); the reasons are printed. A block starting "# in a second terminal" runs in the
# background, as the reader would run it. The well-known ports of the docs (2407, 8443, 8080) are
# replaced by free ones. The README's nginx and HAProxy configurations are then checked by
# `nginx -t` and `haproxy -c` with its openssl.cnf, against the key server the README started.
# The extractor is docs_blocks.py.
. "$(dirname "$0")/lib.sh"

EX=$KW_SOURCE_DIR/tests/integration/docs_blocks.py
P_KS=$(free_port)
P_PX=$(free_port)
P_BE=$(free_port)
GROUPS_STARTED=()

docs_cleanup() {
    local g
    for g in "${GROUPS_STARTED[@]}"; do
        kill -TERM -- "-$g" 2>/dev/null || true
    done
    kw_cleanup
}
trap docs_cleanup EXIT

# run_doc FILE: runs FILE's command blocks in $KW_TMP/<name>; leaves its servers running (in the
# process group $DOC_GROUP) for the checks that follow; sets W to the directory.
run_doc() {
    local md=$1 name rc=0
    name=$(basename "$md" .md)
    W=$KW_TMP/$name
    DOC_GROUP=0
    # No command block (nor one in another shell's spelling): nothing to run.
    grep -Eq '^\s*(```|~~~)+\s*(sh|bash|shell|console|zsh|shell-session)\s*$' "$md" || return 0
    mkdir -p "$W"
    ln -s "$KW_BUILD_DIR" "$W/build"
    ln -s "$KW_SOURCE_DIR/examples" "$W/examples"
    ln -s "$KW_SOURCE_DIR/scripts" "$W/scripts"
    sed -E -e "s/\\b2407\\b/$P_KS/g" -e "s/\\b8443\\b/$P_PX/g" -e "s/\\b8080\\b/$P_BE/g" \
        "$md" >"$W/.doc.md"
    python3 "$EX" script "$W/.doc.md" "$W/.blocks" "${md#"$KW_SOURCE_DIR"/}" >"$W/.blocks.txt" ||
        fail "$md: the extractor refused it"
    local nrun nskip
    nrun=$(grep -Ec ' (run|background)$' "$W/.blocks.txt" || true)
    nskip=$(grep -c ' skipped ' "$W/.blocks.txt" || true)
    if [ "$nrun" = 0 ] && [ "$nskip" = 0 ]; then
        return 0
    fi
    awk -v f="${md#"$KW_SOURCE_DIR"/}" '$2 == "skipped" { l = $1; $1 = $2 = ""; sub(/^ +/, "");
        print "  " f ":" l " not run: " $0 }' "$W/.blocks.txt"
    # In a session of its own, so every background process of the doc can be stopped after.
    (cd "$W" && exec setsid timeout 300 sh "$W/.blocks/run.sh" >"$W/.out.log" 2>&1) &
    DOC_GROUP=$!
    GROUPS_STARTED+=("$DOC_GROUP")
    wait "$DOC_GROUP" || rc=$?
    if [ "$rc" != 0 ]; then
        echo "---- output of ${md#"$KW_SOURCE_DIR"/}'s blocks:" >&2
        tail -n 60 "$W/.out.log" >&2
        for f in "$W"/.blocks/bg*.log "$W"/*.log; do
            [ -f "$f" ] || continue
            echo "---- $f" >&2
            tail -n 20 "$f" >&2
        done
        fail "${md#"$KW_SOURCE_DIR"/}: its command blocks failed (exit $rc); the failing block is the last '====' line above"
    fi
    pass "${md#"$KW_SOURCE_DIR"/}: $nrun command block(s) ran as written, $nskip marked not run"
}

# ---- README.md: the five-minute path, as written
run_doc "$KW_SOURCE_DIR/README.md"
R=$W
grep -q "^200 over HTTPS" "$R/.out.log" || fail "README §3: curl did not print '200 over HTTPS'"
[ "$(cat "$R/pt")" = hello ] || fail "README §4: decrypt did not give back 'hello'"
grep -q "listening" "$R/.blocks/bg1.log" || fail "README §2: the key server's log has no 'listening'"
grep -q '"edge":"edge".*"result":"ok"' "$R/audit.log" ||
    fail "README §3: no ok line of the edge in audit.log: $(head -n 3 "$R/audit.log")"
grep -q 'keyward:sha256=' "$R/proxy.log" || fail "README §3: proxy.log does not show the keyward: keys"
pass "README: curl through keyward-proxy with site-ca.crt, the CLI's sign/verify and decrypt"

# The README's openssl.cnf, nginx and HAProxy configurations, pointed at this build, the PKI and
# the key server the README started: each server must accept its configuration (which loads the
# provider and the key stub through the key server).
for f in ini1.conf nginx1.conf haproxy1.conf; do
    [ -f "$R/.blocks/$f" ] || fail "README: no ${f%1.conf} block"
done
grep -q "^events" "$R/.blocks/nginx1.conf" || fail "README's nginx.conf has no events {}"
grep -q "ssl-provider default" "$R/.blocks/haproxy1.conf" ||
    fail "README's HAProxy global lacks 'ssl-provider default'"
E=$R/etc
mkdir -p "$E"
cp "$R/pki/certs/rsa2048.crt" "$E/site.crt"
cp "$R/rsa2048.stub" "$E/site.stub"
cat "$E/site.crt" "$E/site.stub" >"$E/site.pem"
# paths: /etc/keyward/X -> the PKI's X; site files -> $E; the module and provider directory
sed -e "s#/path/to/keyward/build#$KW_BUILD_DIR#g" -e "s#/etc/keyward/#$R/pki/#g" \
    -e "s#^servers = .*#servers = 127.0.0.1:$P_KS#" "$R/.blocks/ini1.conf" >"$E/openssl.cnf"
# Port 443 as a word only: the free ports put in for 2407/8443/8080 may contain "443" (a backend
# on 44335 became 4257735 once).
site_paths() {
    sed -E -e "s#/etc/ssl/certs/site.crt#$E/site.crt#g" -e "s#/etc/ssl/private/site.stub#$E/site.stub#g" \
        -e "s#/etc/haproxy/site.pem#$E/site.pem#g" -e "s#/path/to/keyward/build#$KW_BUILD_DIR#g" \
        -e "s/\\b443\\b/$(free_port)/g" "$1"
}
PRELOAD=$(kw_provider_preload)
if command -v nginx >/dev/null && [ "$(id -u)" = 0 ]; then
    mkdir -p "$E/nginx"
    site_paths "$R/.blocks/nginx1.conf" >"$E/nginx/nginx.conf"
    LD_PRELOAD=$PRELOAD OPENSSL_CONF=$E/openssl.cnf nginx -t -p "$E/nginx" -c "$E/nginx/nginx.conf" \
        -e "$E/nginx/error.log" -g "pid $E/nginx/nginx.pid;" >"$E/nginx.out" 2>&1 ||
        fail "nginx -t refuses the README's nginx.conf: $(cat "$E/nginx.out")"
    pass "nginx -t accepts the README's nginx.conf with its openssl.cnf"
else
    echo "note: nginx -t not run (needs nginx and root)"
fi
if command -v haproxy >/dev/null; then
    site_paths "$R/.blocks/haproxy1.conf" >"$E/haproxy.cfg"
    LD_PRELOAD=$PRELOAD KEYWARD_SERVERS=127.0.0.1:$P_KS KEYWARD_CLIENT_CERT=$R/pki/edge.crt \
        KEYWARD_CLIENT_KEY=$R/pki/edge.key KEYWARD_CA=$R/pki/ca.crt OPENSSL_CONF=/dev/null \
        haproxy -c -f "$E/haproxy.cfg" >"$E/haproxy.out" 2>&1 ||
        fail "haproxy -c refuses the README's configuration: $(cat "$E/haproxy.out")"
    pass "haproxy -c accepts the README's configuration (the complete ssl-provider form)"
else
    echo "note: haproxy -c not run (haproxy is not installed)"
fi
kill -TERM -- "-$DOC_GROUP" 2>/dev/null || true

# ---- the README's quick start: `make demo` is the build (this one) and then its Makefile recipe,
# which runs here as written, against this build.
D=$KW_TMP/demo
mkdir -p "$D"
ln -s "$KW_BUILD_DIR" "$D/build"
ln -s "$KW_SOURCE_DIR/scripts" "$D/scripts"
awk '/^demo:/ { f = 1; next } f && /^\t/ { print substr($0, 2); next } { f = 0 }' \
    "$KW_SOURCE_DIR/Makefile" | sed 's/\$(BUILD)/build/g' >"$D/recipe.sh"
[ -s "$D/recipe.sh" ] || fail "no demo recipe in the Makefile"
(cd "$D" && exec setsid timeout 300 sh -e "$D/recipe.sh" >"$D/out.log" 2>&1) &
DOC_GROUP=$!
GROUPS_STARTED+=("$DOC_GROUP")
rc=0
wait "$DOC_GROUP" || rc=$?
[ "$rc" = 0 ] || { tail -n 40 "$D/out.log" >&2; fail "make demo's recipe failed (exit $rc)"; }
pass "make demo's recipe ($(tr '\n' ';' <"$D/recipe.sh")) runs: '$(tail -n 1 "$D/out.log")'"

# ---- docs/*.md: every command block runs or says why not (decisions.md is a record, no guide)
for md in "$KW_SOURCE_DIR"/docs/*.md; do
    [ "$(basename "$md")" = decisions.md ] && continue
    run_doc "$md"
    [ "$DOC_GROUP" = 0 ] || kill -TERM -- "-$DOC_GROUP" 2>/dev/null || true
done
