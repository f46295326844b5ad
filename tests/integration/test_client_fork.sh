#!/bin/bash
# Fork safety of the libkeyward client (nginx loads keys in the master, then forks workers): the
# parent uses the client and keeps a request thread running while it forks; every child (and a
# grandchild) starts without the parent's sockets and runs requests from several threads, every
# ping echo and ECDSA signature checked; the parent's own connection keeps working throughout.
# Run three times, with more processes each time, to catch timing-dependent failures.
. "$(dirname "$0")/lib.sh"

make_pki
PORT=$(free_port)
start_keyserver ks "$PORT"

# Sanitizer builds: GCC 12's ASan allocator is not fork-safe (no atfork locking before LLVM 18),
# so the test's own threads must not be allocating at fork() (see kw_forktest.c, --calm-fork).
CALM=()
if [ "${KW_SANITIZE:-OFF}" = ON ]; then
    CALM=(--calm-fork)
    echo "note: sanitizer build: forking only while the test's own threads are idle"
fi

forktest() {
    "$KW_TESTS/kw_forktest" --server "127.0.0.1:$PORT" --cert "$PKI/edge.crt" \
        --key "$PKI/edge.key" --ca "$PKI/ca.crt" --key-cert "$PKI/certs/ecdsa-p256.crt" "${CALM[@]}" "$@"
}

for run in "2 2 100" "8 4 100" "16 3 50"; do
    set -- $run
    forktest --children "$1" --threads "$2" --requests "$3" >"$KW_TMP/fork.out" 2>&1 ||
        fail "kw_forktest children=$1 threads=$2 requests=$3: $(cat "$KW_TMP/fork.out")"
    sed 's/^/  /' "$KW_TMP/fork.out"
    pass "fork: $1 children x $2 threads x $3 requests, parent busy while forking"
done
