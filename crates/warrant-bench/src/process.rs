//! Child server processes and what Linux says about them: CPU time from
//! `/proc/PID/stat`, peak resident memory from `/proc/PID/status`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Child;

/// Clock ticks per second for `/proc/PID/stat` (`getconf CLK_TCK`; 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// A server running in a child process; killed on drop (`kill_on_drop`) or by [`ChildServer::stop`].
pub struct ChildServer {
    pub child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
}

impl ChildServer {
    pub fn new(child: Child, addr: SocketAddr) -> Result<Self> {
        let pid = child
            .id()
            .context("child exited before its pid could be read")?;
        Ok(Self { child, pid, addr })
    }

    /// Kills the child and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Child side: exits this process when its stdin closes, i.e. when the parent (which holds the
/// other end of the pipe in its `Child`) exits or drops it, even if the parent dies without
/// killing us. Runs on a plain thread, off the server's runtime.
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
}

/// CPU seconds (user + system, all threads) the process has consumed so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds (user + system) the calling thread has consumed so far.
pub fn thread_cpu_seconds() -> Result<f64> {
    stat_cpu_seconds("/proc/thread-self/stat")
}

/// utime + stime of a `/proc/…/stat` file, in seconds (tick resolution: 10 ms).
fn stat_cpu_seconds(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/PID/stat")?;
    // After ')': field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64> {
        let v: u64 = fields
            .get(i)
            .context("short /proc/PID/stat")?
            .parse()
            .context("non-numeric /proc/PID/stat field")?;
        Ok(v as f64)
    };
    Ok((tick(11)? + tick(12)?) / CLK_TCK)
}

/// Peak resident set size (`VmHWM`) in MiB.
pub fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmHWM:") {
            let kib: f64 = v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .context("parsing VmHWM")?;
            return Ok(kib / 1024.0);
        }
    }
    bail!("no VmHWM in /proc/{pid}/status")
}

/// Resets the peak RSS to the current RSS (`echo 5 > /proc/PID/clear_refs`), so the next
/// [`peak_rss_mib`] covers one run only. Best effort: returns false if the kernel refused.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), b"5").is_ok()
}
