//! What the host's kernel says about a guest's QEMU process: whether the OOM killer ended it.
//! libvirt reports such a death only as "crashed"; the kernel log says why.

use std::io::Read;

/// Whether the kernel log records that `pid` was killed by the OOM killer (a memory cgroup's or
/// the host's). Reads `/dev/kmsg` without blocking; `false` when it cannot be read.
pub fn killed_for_memory(pid: u32) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut kmsg) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return false;
    };
    // Each read returns one record; the ring holds at most a few thousand.
    let mut buf = vec![0u8; 8192];
    for _ in 0..100_000 {
        match kmsg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if record_says_killed(&String::from_utf8_lossy(&buf[..n]), pid) {
                    return true;
                }
            }
            // EPIPE: a record was overwritten while reading; go on with the next.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(_) => break,
        }
    }
    false
}

/// `…;Memory cgroup out of memory: Killed process 4242 (qemu-system-x86) total-vm:…`, or the
/// host-wide `Out of memory: Killed process 4242 …`.
fn record_says_killed(record: &str, pid: u32) -> bool {
    let text = record.split_once(';').map_or(record, |(_, t)| t);
    (text.contains("out of memory") || text.contains("Out of memory"))
        && text.contains(&format!("Killed process {pid} "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_records_are_recognised_for_their_pid_only() {
        let memcg = "3,1234,5678,-;Memory cgroup out of memory: Killed process 4242 (qemu-system-x86) total-vm:2000kB";
        assert!(record_says_killed(memcg, 4242));
        assert!(!record_says_killed(memcg, 424));
        assert!(!record_says_killed(memcg, 42421));
        let host = "3,1,2,-;Out of memory: Killed process 77 (qemu-system-x86) total-vm:1kB";
        assert!(record_says_killed(host, 77));
        assert!(!record_says_killed(
            "6,1,2,-;Killed process 77 (x) by a user",
            77
        ));
    }
}
