#!/bin/bash
# The man pages (man/*.[158]) say what the programs accept: every option that `--help` prints
# (keyward-keyserver, keyward-proxy, keyward and each of its commands) appears in its page, and
# every setting keyward.so reads from openssl.cnf (and its KEYWARD_* override) in keyward.so(5).
# Each page must also render without warnings (man --warnings), when man-db is installed.
. "$(dirname "$0")/lib.sh"

MAN=$KW_SOURCE_DIR/man
missing=0

# options_of TEXT: the long options a help text names, one per line (--name, without =/args).
options_of() {
    { grep -oE '(^|[^[:alnum:]-])--[a-z0-9][a-z0-9-]*' || true; } | sed -E 's/^[^-]*//' | sort -u
}

# The page must name the option as roff writes it: \-\-name (or \fB\-\-name).
check_page() {
    local page=$1 what=$2 opt esc
    while read -r opt; do
        [ -n "$opt" ] || continue
        esc=${opt//-/\\-}
        if ! grep -qF -- "$esc" "$MAN/$page"; then
            echo "missing in man/$page: $opt (from $what)" >&2
            missing=$((missing + 1))
        fi
    done
}

# (check_page reads a process substitution, not a pipe, so that it counts in this shell.)
check_page keyward-keyserver.8 "keyward-keyserver --help" < <("$KW_BIN/keyward-keyserver" --help | options_of)
check_page keyward-proxy.8 "keyward-proxy --help" < <("$KW_BIN/keyward-proxy" --help | options_of)
check_page keyward.1 "keyward --help" < <("$KW_BIN/keyward" --help | options_of)
for cmd in $("$KW_BIN/keyward" --help | awk '/^Commands:/{c=1; next} c && /^  [a-z]/{print $1}'); do
    grep -qF ".SS $cmd" "$MAN/keyward.1" || { echo "missing in man/keyward.1: command $cmd" >&2; missing=$((missing + 1)); }
    check_page keyward.1 "keyward $cmd --help" < <("$KW_BIN/keyward" "$cmd" --help 2>&1 | options_of)
done

# keyward.so reads its settings by name in src/provider/provider.c; each, and its environment
# override, belongs in keyward.so(5).
settings=$(sed -n '/static const char \*const names\[/,/};/p' "$KW_SOURCE_DIR/src/provider/provider.c" |
    grep -oE '"[a-z_]+"' | tr -d '"')
[ -n "$settings" ] || fail "cannot find the provider's settings in src/provider/provider.c"
for s in $settings; do
    grep -qE "^\.B $s( |\$)" "$MAN/keyward.so.5" ||
        { echo "missing in man/keyward.so.5: setting $s" >&2; missing=$((missing + 1)); }
done
for env in $(grep -ohE '"KEYWARD_[A-Z_]+"' "$KW_SOURCE_DIR"/src/provider/provider.c | tr -d '"' | sort -u); do
    grep -qF "$env" "$MAN/keyward.so.5" || { echo "missing in man/keyward.so.5: $env" >&2; missing=$((missing + 1)); }
done
[ "$missing" = 0 ] || fail "$missing options or settings are not in the man pages"
pass "every option of --help and every provider setting is in its man page"

if command -v man >/dev/null 2>&1; then
    for page in "$MAN"/*.[158]; do
        out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null || true)
        [ -z "$out" ] || fail "man -l $(basename "$page") warns: $out"
    done
    pass "the man pages render without warnings"
fi
