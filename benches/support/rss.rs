//! Peak resident memory of this process, for the benchmarks that report it.

/// The process's peak RSS so far (`VmHWM` in `/proc/self/status`), in KiB; 0 where there is
/// no such file. Writing `5` to `/proc/self/clear_refs` resets it to the current RSS.
pub fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
