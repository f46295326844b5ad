#!/bin/bash
# Error and log messages a newcomer meets (issue 17): a malformed --allow on the key server names
# the option and its syntax.
. "$(dirname "$0")/lib.sh"

W=$KW_TMP/work
mkdir -p "$W"

# expect_fail STATUS PATTERN CMD...: CMD exits with STATUS and says PATTERN on stderr.
expect_fail() {
    local want=$1 pattern=$2 rc=0
    shift 2
    "$@" >"$W/out" 2>"$W/err" || rc=$?
    [ "$rc" = "$want" ] || fail "$* exited $rc, not $want: $(cat "$W/err")"
    grep -q -- "$pattern" "$W/err" || fail "$*: stderr lacks '$pattern': $(cat "$W/err")"
}

# ---- a malformed --allow names the option and the EDGE=KEY syntax, both spellings of the flag
for args in "--allow edge=rsa2048" "--allow=edge=rsa2048" "--allow cn:edge"; do
    # shellcheck disable=SC2086 # split on purpose
    expect_fail 2 "for --allow" "$KW_BIN/keyward-keyserver" $args
    for want in "cn:NAME" "san:" "spki:" "=KEY"; do
        grep -q -- "$want" "$W/err" || fail "$args: message lacks '$want': $(cat "$W/err")"
    done
done
pass "malformed --allow: '$(head -n1 "$W/err")'"
