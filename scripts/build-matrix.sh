#!/bin/bash
# Builds keyward the ways packagers do: Release, RelWithDebInfo and Debug, with gcc and clang,
# warnings as errors. `make test` covers gcc RelWithDebInfo; this adds the other five.
# Usage: scripts/build-matrix.sh [BUILD_ROOT]   (default build-matrix/)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-build-matrix}
jobs=$(nproc)
for cc in gcc clang; do
    for type in Release RelWithDebInfo Debug; do
        [ "$cc/$type" = gcc/RelWithDebInfo ] && continue
        dir=$root/$cc-$type
        echo "== $cc $type"
        CC=$cc cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DKW_WERROR=ON >/dev/null
        cmake --build "$dir" -j"$jobs" >"$dir.log" 2>&1 || { tail -40 "$dir.log"; exit 1; }
    done
done
echo "== build matrix: all built without warnings"
