#!/bin/bash
# Runs every libFuzzer target in BUILD_DIR/fuzz/ for SECONDS each, starting from a temporary copy
# of its seed corpus tests/fuzz/corpus/<target>/ (the repository's corpus is never written by the
# fuzzer). Fails when any target crashes; crash inputs are copied into
# tests/fuzz/corpus/<target>/ so every build replays them as regression seeds from then on.
#
# Usage: scripts/run-fuzzers.sh BUILD_DIR [SECONDS]   (build with: CC=clang cmake -DKW_FUZZ=ON)
set -u

usage() {
    echo "usage: $0 BUILD_DIR [SECONDS]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
build_dir=$1
seconds=${2:-60}
case $seconds in '' | *[!0-9]*) usage ;; esac
src_dir=$(cd "$(dirname "$0")/.." && pwd)

shopt -s nullglob
targets=("$build_dir"/fuzz/*_fuzz)
if [ ${#targets[@]} -eq 0 ]; then
    echo "no fuzz targets in $build_dir/fuzz/: configure with CC=clang cmake -DKW_FUZZ=ON" \
         "-B $build_dir and build first" >&2
    exit 1
fi

work=$(mktemp -d /tmp/kw-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

failed=0
for bin in "${targets[@]}"; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    target=${name%_fuzz}
    seeds="$src_dir/tests/fuzz/corpus/$target"
    corpus="$work/$target/corpus"
    artifacts="$work/$target/artifacts"
    mkdir -p "$corpus" "$artifacts" "$seeds"
    cp -a "$seeds"/. "$corpus"/ 2>/dev/null
    echo "== $name: ${seconds}s, $(ls "$corpus" | wc -l) seeds"
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" >"$work/$target/log" 2>&1
    rc=$?
    crashes=("$artifacts"/*)
    if [ $rc -ne 0 ] || [ ${#crashes[@]} -gt 0 ]; then
        failed=1
        echo "FAIL: $name exited with $rc; last lines of its log:"
        tail -n 40 "$work/$target/log"
        for c in "${crashes[@]}"; do
            dest="$seeds/regress-$(basename "$c")"
            cp "$c" "$dest"
            echo "saved $dest (replayed by ctest -R fuzz_replay.$target)"
        done
    else
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' \
            "$work/$target/log" | sed 's/^/   /'
        echo "ok: $name ran ${seconds}s without a crash"
    fi
done
exit $failed
