//! Child server processes and what Linux says about them: CPU time from
//! `/proc/PID/stat`, peak resident memory from `/proc/PID/status`. Also the plumbing of the
//! bare hyper servers this binary runs as its own children (`warrant-bench floor`,
//! `warrant-bench upstream`): [`spawn_self`] on the parent side, [`serve_self`] on the child's.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

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

/// Parent side: starts `<this binary> SUBCOMMAND` (a server that [`serve_self`]s) and reads the
/// port it prints. The child's stdin is a pipe held by the returned [`ChildServer`]: the child
/// exits when it closes, and is killed on drop.
pub async fn spawn_self(subcommand: &str) -> Result<ChildServer> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let mut child = Command::new(exe)
        .arg(subcommand)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the {subcommand} child process"))?;
    let stdout = child
        .stdout
        .take()
        .with_context(|| format!("{subcommand} stdout"))?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .with_context(|| format!("timed out waiting for the {subcommand}'s port"))?
    .with_context(|| format!("reading the {subcommand}'s port"))?;
    let port: u16 = line
        .trim()
        .parse()
        .with_context(|| format!("{subcommand} printed {line:?}, not a port"))?;
    ChildServer::new(child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Child side of [`spawn_self`]: on a 2-worker runtime, binds 127.0.0.1:0, builds the handler
/// from the port (`make_handler`), prints the port on stdout, then serves HTTP/1.1 keep-alive
/// connections (Nagle off) with the handler until stdin closes or the process is killed.
pub fn serve_self<H, F>(what: &str, make_handler: impl FnOnce(u16) -> Result<H>) -> Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .with_context(|| format!("building the {what} runtime"))?
        .block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            let handler = make_handler(port)?;
            {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{port}")?;
                out.flush()?;
            }
            exit_when_stdin_closes();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let response = handler(req);
                        async move { Ok::<_, Infallible>(response.await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
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
