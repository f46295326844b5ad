#!/bin/bash
# keyward tickets --watch --exec CMD (nginx's form, `--exec 'nginx -s reload'`): CMD runs after
# each write and sees the new files (the hook copies them; each copy has moved one epoch on from
# the one before, so it was taken after the write, not before it); a CMD that fails is reported
# with its exit status and the watch goes on (the hook fails once, the next rotation runs it again
# and it sees that rotation's files).
. "$(dirname "$0")/lib.sh"

make_pki
W=$KW_TMP/w
mkdir -p "$W/out" "$W/seen"
head -c 32 /dev/urandom >"$W/secret"
chmod 600 "$W/secret"
cat >"$W/hook.sh" <<HOOK
#!/bin/sh
# Copies the key files into seen/N (N: this run's number); fails (exit 3) once when fail exists.
n=\$(cat "$W/count" 2>/dev/null || echo 0)
n=\$((n + 1))
echo "\$n" >"$W/count"
mkdir "$W/seen/\$n"
cp "$W/out/previous.key" "$W/out/current.key" "$W/out/next.key" "$W/seen/\$n/"
if [ -f "$W/fail" ]; then
    rm "$W/fail"
    exit 3
fi
HOOK
chmod 755 "$W/hook.sh"

PORT=$(free_port)
start_keyserver ks "$PORT" --ticket-secret "$W/secret" --ticket-rotation-s 4 \
    --allow "cn:edge=tickets"
start_bg watch "$KW_BIN/keyward" tickets --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" \
    --key "$PKI/edge.key" --ca "$PKI/ca.crt" --format nginx --out "$W/out" --watch \
    --exec "$W/hook.sh"
WATCH_PID=$LAST_PID

# wait_run N: waits (20 s at most) until the hook has run N times.
wait_run() {
    local tries=400
    until [ -d "$W/seen/$1" ] && [ -f "$W/seen/$1/next.key" ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || fail "the --exec hook did not run a ${1}th time: $(cat "$KW_TMP/watch.log")"
        sleep 0.05
    done
}
wait_run 1
touch "$W/fail"
for f in previous current next; do
    [ "$(stat -c %s "$W/seen/1/$f.key")" = 80 ] || fail "the hook saw no 80-byte $f.key"
done
pass "--exec ran after the first write and saw the three key files"

wait_run 2
wait_run 3
# The watch writes again only when the epoch moved on, so each run's files are one epoch on.
for n in 2 3; do
    p=$((n - 1))
    cmp -s "$W/seen/$p/current.key" "$W/seen/$n/previous.key" ||
        fail "run $n did not see the new files (its previous.key is not run $p's current.key)"
    cmp -s "$W/seen/$p/next.key" "$W/seen/$n/current.key" ||
        fail "run $n did not see the new files (its current.key is not run $p's next.key)"
done
pass "--exec ran again after each rotation's write and saw that write's files"

kw_grep -F "keyward: --exec '$W/hook.sh' failed: exit status 3; the watch goes on" \
    "$KW_TMP/watch.log" || fail "the failing --exec is not reported: $(cat "$KW_TMP/watch.log")"
[ "$(grep -c "failed: exit status" "$KW_TMP/watch.log")" = 1 ] ||
    fail "expected one failure report: $(cat "$KW_TMP/watch.log")"
kill -0 "$WATCH_PID" 2>/dev/null || fail "keyward tickets --watch exited after the failed --exec"
pass "a failing --exec is reported with its exit status and the watch goes on: $(
    grep "failed: exit status" "$KW_TMP/watch.log")"
