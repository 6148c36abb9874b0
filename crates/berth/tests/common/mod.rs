//! Helpers shared by the berth integration tests.

use std::path::Path;
use std::process::Command;

/// Frames tshark flags as malformed, with an error-level expert note, or with a bad
/// IP/UDP/ICMP/TCP checksum (checksum validation switched on). `None` when tshark
/// is missing outside CI.
pub fn tshark_complaints(pcap: &Path) -> Option<Vec<String>> {
    let filter = "_ws.malformed || _ws.expert.severity >= error || ip.checksum.status == 0 \
                  || udp.checksum.status == 0 || icmp.checksum.status == 0 \
                  || tcp.checksum.status == 0";
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .args([
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-Y",
            filter,
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => Some(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
        ),
        Ok(o) => panic!("tshark failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("tshark is required in CI (.ci/run installs it): {e}");
            }
            eprintln!("SKIP tshark check: tshark not installed ({e}); apt-get install tshark");
            None
        }
    }
}
