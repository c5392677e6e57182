//! Whether this host can enforce libvirt's `<bandwidth>` on a guest's NIC. libvirt shapes traffic
//! into the guest with `tc` htb classes and an `sfq` leaf, and polices traffic out of it with an
//! `ingress` qdisc and a `police` action: when the kernel lacks one of these (some container and
//! micro-VM kernels do), every start of a guest with `<bandwidth>` fails. The daemon probes once,
//! on a throwaway veth pair, exactly the commands libvirt runs, and leaves the limit out (saying
//! so in `GET /host`) rather than make every server unbootable.

use std::process::Command;

/// `Ok` when every step works; otherwise the step that failed and what `tc` said.
pub fn probe() -> Result<(), String> {
    let dev = format!("nuprb{}", std::process::id() % 10_000_000);
    let peer = format!("{dev}p");
    run(&[
        "ip", "link", "add", &dev, "type", "veth", "peer", "name", &peer,
    ])?;
    let steps: [&[&str]; 5] = [
        &[
            "tc", "qdisc", "add", "dev", &dev, "root", "handle", "1:", "htb", "default", "1",
        ],
        &[
            "tc", "class", "add", "dev", &dev, "parent", "1:", "classid", "1:1", "htb", "rate",
            "1000kbit",
        ],
        &[
            "tc", "qdisc", "add", "dev", &dev, "parent", "1:1", "handle", "2:", "sfq", "perturb",
            "10",
        ],
        &["tc", "qdisc", "add", "dev", &dev, "ingress"],
        &[
            "tc", "filter", "add", "dev", &dev, "parent", "ffff:", "protocol", "all", "u32",
            "match", "u32", "0", "0", "police", "rate", "1000kbit", "burst", "100kb", "mtu",
            "64kb", "drop", "flowid", ":1",
        ],
    ];
    let result = steps.iter().try_for_each(|s| run(s));
    let _ = run(&["ip", "link", "del", &dev]);
    result
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
