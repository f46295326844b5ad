# Sourced by the benchmarks that report CPU time per operation from /proc.
# cpu_ticks PID...: user+system CPU ticks (1/100 s) used so far by the processes and children.
cpu_ticks() {
    local t=0 p q
    for p in "$@"; do
        for q in $p $(pgrep -P "$p" || true); do
            t=$((t + $(awk '{print $14 + $15}' "/proc/$q/stat" 2>/dev/null || echo 0)))
        done
    done
    echo "$t"
}
