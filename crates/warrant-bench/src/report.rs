//! Figures per run, the table, the comparison of Warrant with the floor, of Warrant on
//! PostgreSQL with Warrant on SQLite, and of issuance with the audit log on and off (the
//! per-algorithm comparison is in algorithms.rs).

use std::time::Duration;

use crate::load::LoadResult;

/// Goal (a): Warrant tokens/s at 64 connections, as a fraction of the floor's.
const GOAL_RATIO_AT_64: f64 = 0.5;
/// Goal (b): tokens per server CPU-second at 64 connections.
const GOAL_TOKENS_PER_CPU_S: f64 = 15_000.0;
/// Goal (c): p99 latency at 16 connections, ms.
const GOAL_P99_MS_AT_16: f64 = 5.0;
/// Issue 4: tokens/s with durable auditing at 64 connections, as a fraction of without.
const GOAL_AUDIT_RATIO_AT_64: f64 = 0.8;

/// The figures for one (target, connections) run.
pub struct Row {
    pub target: &'static str,
    pub connections: usize,
    /// Counted responses in the measured window.
    pub tokens: u64,
    pub tokens_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub cpu_s: f64,
    pub rss_mib: f64,
    pub errors: u64,
}

impl Row {
    pub fn new(
        target: &'static str,
        connections: usize,
        mut load: LoadResult,
        duration: Duration,
        cpu_s: f64,
        rss_mib: f64,
    ) -> Self {
        load.latencies_us.sort_unstable();
        Self {
            target,
            connections,
            tokens: load.ok,
            tokens_per_s: load.ok as f64 / duration.as_secs_f64(),
            p50_ms: percentile_ms(&load.latencies_us, 0.50),
            p99_ms: percentile_ms(&load.latencies_us, 0.99),
            max_ms: percentile_ms(&load.latencies_us, 1.0),
            cpu_s,
            rss_mib,
            errors: load.errors,
        }
    }

    pub fn tokens_per_cpu_s(&self) -> f64 {
        if self.cpu_s > 0.0 {
            self.tokens as f64 / self.cpu_s
        } else {
            0.0
        }
    }

    pub fn cpu_s_per_1k(&self) -> f64 {
        if self.tokens > 0 {
            self.cpu_s * 1000.0 / self.tokens as f64
        } else {
            f64::NAN
        }
    }
}

/// Nearest-rank percentile of sorted microsecond samples, in ms.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted_us.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[i]) / 1000.0
}

pub fn print_table(rows: &[Row]) {
    println!(
        "{:<9} {:>5} {:>10} {:>8} {:>8} {:>8} {:>12} {:>12} {:>9} {:>7}",
        "target",
        "conns",
        "tokens/s",
        "p50 ms",
        "p99 ms",
        "cpu s",
        "tok/cpu-s",
        "cpu-s/1k tok",
        "RSS MiB",
        "errors"
    );
    for r in rows {
        println!(
            "{:<9} {:>5} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>12.0} {:>12.4} {:>9.1} {:>7}",
            r.target,
            r.connections,
            r.tokens_per_s,
            r.p50_ms,
            r.p99_ms,
            r.cpu_s,
            r.tokens_per_cpu_s(),
            r.cpu_s_per_1k(),
            r.rss_mib,
            r.errors
        );
    }
}

pub fn print_summary(rows: &[Row], connections: &[usize]) {
    let find = |target: &str, n: usize| {
        rows.iter()
            .find(|r| r.target == target && r.connections == n)
    };
    println!("\nWarrant vs floor, same run (tokens/s):");
    for &n in connections {
        if let (Some(w), Some(f)) = (find("warrant", n), find("floor", n)) {
            println!(
                "  {n:>3} conns: warrant {:>8.0} / floor {:>8.0} = {:.2}x",
                w.tokens_per_s,
                f.tokens_per_s,
                ratio(w.tokens_per_s, f.tokens_per_s)
            );
        }
    }

    println!("\nGoals:");
    let (w64, f64_) = (find("warrant", 64), find("floor", 64));
    match (w64, f64_) {
        (Some(w), Some(f)) => {
            let r = ratio(w.tokens_per_s, f.tokens_per_s);
            goal(
                "(a) tokens/s at 64 conns >= 0.5 x floor",
                format!("{r:.2}x"),
                r >= GOAL_RATIO_AT_64,
            );
        }
        _ => not_measured("(a) tokens/s at 64 conns >= 0.5 x floor"),
    }
    match w64 {
        Some(w) => {
            let t = w.tokens_per_cpu_s();
            goal(
                "(b) >= 15,000 tokens per server CPU-second at 64 conns",
                format!("{t:.0}"),
                t >= GOAL_TOKENS_PER_CPU_S,
            );
        }
        None => not_measured("(b) >= 15,000 tokens per server CPU-second at 64 conns"),
    }
    match find("warrant", 16) {
        Some(w) => goal(
            "(c) p99 <= 5 ms at 16 conns",
            format!("{:.2} ms", w.p99_ms),
            w.p99_ms <= GOAL_P99_MS_AT_16,
        ),
        None => not_measured("(c) p99 <= 5 ms at 16 conns"),
    }
}

/// Each row of `others` against the `base` row at the same connection count: tokens/s,
/// p99 and tokens per server CPU-second, as ratios (1.00x: the same).
pub fn print_store_ratios(
    rows: &[Row],
    connections: &[usize],
    base: &str,
    others: &[&str],
    cpus: usize,
) {
    let find = |target: &str, n: usize| {
        rows.iter()
            .find(|r| r.target == target && r.connections == n)
    };
    println!("\nPostgreSQL vs SQLite, same run (each row / {base} at the same connection count):");
    println!(
        "  {:>5}  {:<8} {:>9} {:>9} {:>10}",
        "conns", "target", "tokens/s", "p99", "tok/cpu-s"
    );
    for &n in connections {
        let Some(b) = find(base, n) else { continue };
        for &target in others {
            if let Some(r) = find(target, n) {
                println!(
                    "  {n:>5}  {target:<8} {:>8.2}x {:>8.2}x {:>9.2}x",
                    ratio(r.tokens_per_s, b.tokens_per_s),
                    ratio(r.p99_ms, b.p99_ms),
                    ratio(r.tokens_per_cpu_s(), b.tokens_per_cpu_s())
                );
            }
        }
    }
    println!(
        "\nThe load generator and every replica share this machine's {cpus} CPUs: a second \
         replica adds no cores here, so\nits row shows the cost of splitting the load over \
         two processes, not how replicas scale on separate machines."
    );
}

/// The `on` rows against the `off` rows at each connection count, and the audit goal.
pub fn print_audit_summary(rows: &[Row], connections: &[usize], on: &str, off: &str) {
    let find = |target: &str, n: usize| {
        rows.iter()
            .find(|r| r.target == target && r.connections == n)
    };
    println!("\nAudit on vs off, same run ({on} / {off} at the same connection count):");
    println!(
        "  {:>5} {:>9} {:>9} {:>10} {:>10}",
        "conns", "tokens/s", "p99", "tok/cpu-s", "RSS"
    );
    for &n in connections {
        if let (Some(a), Some(b)) = (find(on, n), find(off, n)) {
            println!(
                "  {n:>5} {:>8.2}x {:>8.2}x {:>9.2}x {:>9.2}x",
                ratio(a.tokens_per_s, b.tokens_per_s),
                ratio(a.p99_ms, b.p99_ms),
                ratio(a.tokens_per_cpu_s(), b.tokens_per_cpu_s()),
                ratio(a.rss_mib, b.rss_mib)
            );
        }
    }
    match (find(on, 64), find(off, 64)) {
        (Some(a), Some(b)) => {
            let r = ratio(a.tokens_per_s, b.tokens_per_s);
            let verdict = if r >= GOAL_AUDIT_RATIO_AT_64 {
                "PASS"
            } else {
                "FAIL"
            };
            println!(
                "audit on / audit off at 64 connections: {:.0}% of throughput \
                 (goal: within 20%, i.e. >= 80%)  {verdict}",
                r * 100.0
            );
        }
        _ => println!(
            "audit on / audit off at 64 connections: not measured (connection count not run)"
        ),
    }
}

pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn goal(name: &str, value: String, pass: bool) {
    let verdict = if pass { "PASS" } else { "FAIL" };
    println!("  {name:<56} {value:>10}  {verdict}");
}

fn not_measured(name: &str) {
    println!("  {name:<56} {:>10}  n/a (connection count not run)", "-");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.50), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[7000], 0.99), 7.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }
}
