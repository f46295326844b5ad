#!/bin/bash
# /health sees a stalled event loop (issue 18's leftover), in both daemons: their metrics endpoint
# answers from a thread of its own, so a loop stuck in a call kept /health at 200 while nobody was
# served. kw_thread_stop stops the loop thread alone (ptrace; SIGSTOP would stop every thread):
# within a few seconds /health says 503 "event loop stalled for N ms" (and /ready 503 in both),
# and 200 again once the thread runs. Exits 77 (skipped) where ptrace is refused.
. "$(dirname "$0")/lib.sh"
make_pki
proxy_remote_ok || fail "needs the provider and the key server built"

http() { metrics_get "$@"; }

# stall NAME TID PORT [PATH...]: stops thread TID for 5 s; /health on PORT must turn 503 with the
# stall in its body (and each PATH 503 too), then 200 once the thread runs again.
stall() {
    local name=$1 tid=$2 port=$3 code path
    shift 3
    [ "$(http "$port" /health)" = 200 ] || fail "$name /health before the stall: $(cat "$KW_TMP/body")"
    "$KW_TESTS/kw_thread_stop" "$tid" 5 >"$KW_TMP/stop.out" 2>&1 &
    local stopper=$!
    wait_for_line "$KW_TMP/stop.out" '^stopped' "kw_thread_stop did not stop $name's loop thread" 5
    sleep 2.6
    code=$(http "$port" /health)
    [ "$code" = 503 ] || fail "$name /health with its loop stopped for 2.6 s: $code $(cat "$KW_TMP/body")"
    grep -q 'event loop stalled for [0-9]* ms' "$KW_TMP/body" ||
        fail "$name /health says: $(cat "$KW_TMP/body")"
    local said
    said=$(cat "$KW_TMP/body")
    for path in "$@"; do
        [ "$(http "$port" "$path")" = 503 ] || fail "$name $path with its loop stopped: $(cat "$KW_TMP/body")"
    done
    wait "$stopper" || fail "kw_thread_stop: $(cat "$KW_TMP/stop.out")"
    for _ in $(seq 1 30); do
        code=$(http "$port" /health)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || fail "$name /health after the loop runs again: $code $(cat "$KW_TMP/body")"
    pass "$name: loop thread stopped: /health 503 '$said'$([ $# -gt 0 ] && echo " ($* 503 too)"); running again: 200"
}

# ---- the key server: its loop runs on the main thread ----
KS=$(free_port)
KM=$(free_port)
start_keyserver ks "$KS" --metrics "127.0.0.1:$KM"
wait_port "$KM" 10 || fail "key server metrics listener"
rc=0
"$KW_TESTS/kw_thread_stop" "$KS_PID" 0 >"$KW_TMP/probe.out" 2>&1 || rc=$?
if [ "$rc" = 77 ]; then # no CAP_SYS_PTRACE and a ptrace_scope that refuses a non-parent
    echo "SKIP: ptrace refused here: $(cat "$KW_TMP/probe.out")"
    exit 77
fi
[ "$rc" = 0 ] || fail "kw_thread_stop: $(cat "$KW_TMP/probe.out")"
[ "$(ready_code "$KM")" = 200 ] || fail "key server /ready before the stall: $(cat "$KW_TMP/body")"
stall keyward-keyserver "$KS_PID" "$KM" /ready

# ---- keyward-proxy, one thread: worker 0's loop runs on the main thread ----
BP=$(free_port)
start_backend backend "$BP" --echo
PP=$(free_port)
MP=$(free_port)
write_proxy_yaml "$KW_TMP/proxy.yaml" "127.0.0.1:$PP" "127.0.0.1:$BP" "$PKI/certs/ecdsa-p256.crt" \
    "127.0.0.1:$KS" "metrics: \"127.0.0.1:$MP\"
threads: 1"
start_proxy proxy "$PP" --config "$KW_TMP/proxy.yaml"
wait_port "$MP" 10 || fail "proxy metrics listener"
[ "$(ready_code "$MP")" = 200 ] || fail "proxy /ready before the stall: $(cat "$KW_TMP/body")"
stall keyward-proxy "$PROXY_PID" "$MP" /ready
[ "$(http "$MP" /ready)" = 200 ] || fail "proxy /ready after the stall: $(cat "$KW_TMP/body")"
kill -0 "$PROXY_PID" && kill -0 "$KS_PID" || fail "a daemon died after its loop was stopped"
pass "both daemons serve on after the stall"
