//! `cargo bench -p suites --bench figures`: the figures of docs/performance.md, printed.
//!
//! - the whole catalog against the reference target on the simulated fabric: wall time and
//!   cases per second (snapshots compared, as `nvmf-conform run` does);
//! - the offload engine's data path: 4 KiB random reads and writes at queue depth 1 and 32
//!   on one core, IOPS and ns per I/O, as a ratio to the memcpy bound measured in the same
//!   run: an offloaded I/O's unavoidable work, two 4 KiB copies between random places of a
//!   256 MiB pool (host buffer → staging → media), best of several rounds;
//! - replaying one case by seed, process start included (`nvmf-conform replay`, when the
//!   binary is built next to this bench);
//! - the process's resident memory while serving, next to the staging buffer.
//!
//! Every figure is printed on its own line as `NAME = VALUE UNIT` (lines starting with `#`
//! are comments), so scripts can read them.
//!
//! A bench binary, not a test: nothing here asserts a time. Pass `--quick` for a short run,
//! and section names (`catalog`, `datapath`, `replay`, `memory`) to run only those, e.g.
//! under a profiler: `cargo bench -p suites --bench figures -- --quick datapath`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use harness::fabric::Access;
use harness::initiator::{Command, HostQueue};
use harness::wire::{RwCommand, SglRepr, SqeCommand};
use suites::catalog;
use suites::framework::session::SessionOpts;
use suites::framework::Dut;
use suites::run::{self, Options};

const BLOCK: usize = 4096;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sections: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |s: &str| sections.is_empty() || sections.contains(&s);
    println!("# nvmf-conform figures: {}", machine());
    if wants("catalog") {
        catalog_figures();
    }
    if wants("datapath") {
        let ios = if quick { 2_000 } else { 20_000 };
        let bound_ns = if quick {
            memcpy_bound_ns(2, 10_000)
        } else {
            memcpy_bound_ns(5, 100_000)
        };
        figure("memcpy_bound.ns_per_io", bound_ns, "ns");
        figure("memcpy_bound.ios_per_sec", 1e9 / bound_ns, "io/s");
        for (write, depth) in [(false, 1u16), (true, 1), (false, 32), (true, 32)] {
            datapath(write, depth, ios, bound_ns);
        }
    }
    if wants("replay") {
        replay_figure();
    }
    if wants("memory") {
        rss_figure();
    }
}

/// Prints one figure as `NAME = VALUE UNIT`.
fn figure(name: &str, value: f64, unit: &str) {
    let v = if value.fract() == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    };
    println!("{name} = {v} {unit}");
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

fn catalog_figures() {
    let entries = catalog::all();
    let opts = Options {
        snapshots: Some(suites::snapshot::default_dir()),
        ..Options::default()
    };
    let t = Instant::now();
    let r = run::run(&entries, &opts, |_| {});
    let wall = t.elapsed();
    figure("catalog.cases", r.cases.len() as f64, "cases");
    figure("catalog.passed", r.count("pass") as f64, "cases");
    figure("catalog.skipped", r.count("skip") as f64, "cases");
    figure("catalog.wall", wall.as_secs_f64(), "s");
    figure(
        "catalog.cases_per_sec",
        r.cases.len() as f64 / wall.as_secs_f64(),
        "cases/s",
    );
}

/// Size of the pool the memcpy bound copies within: larger than any cache, as the host
/// buffers, staging and media of a real data path are.
const POOL: usize = 256 << 20;

/// Nanoseconds per I/O of the memcpy bound: two 4 KiB copies per I/O (host buffer →
/// staging → media) between random 4 KiB-aligned places of a 256 MiB pool, best of
/// `rounds` rounds of `n` I/Os. The places are drawn before the clock starts.
fn memcpy_bound_ns(rounds: u32, n: usize) -> f64 {
    let mut pool = vec![0x5au8; POOL];
    let slots = (POOL / BLOCK) as u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % slots) as usize * BLOCK
    };
    let places: Vec<[usize; 3]> = (0..n).map(|_| [next(), next(), next()]).collect();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for &[host, staging, media] in &places {
            pool.copy_within(host..host + BLOCK, staging);
            pool.copy_within(staging..staging + BLOCK, media);
            black_box(&mut pool[media]);
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    black_box(&pool);
    best
}

/// `ios` random 4 KiB reads or writes at `depth` through the offloaded path.
fn datapath(write: bool, depth: u16, ios: u32, bound_ns: f64) {
    let rt = harness::fabric::sim::runtime().expect("runtime");
    let elapsed = rt.block_on(async {
        let dut = Dut::untraced(
            1,
            &harness::api::Profile::builtin("full").unwrap(),
            Default::default(),
        );
        let opts = SessionOpts {
            format: dut.ns_format(),
            depth: depth.max(2),
            ..Default::default()
        };
        let mut s = dut.session(&opts, 4420).await.expect("session");
        let q: &mut HostQueue = s.io.queue();
        q.set_command_bound(Duration::from_secs(5));
        let ctx = q.ctx().clone();
        let access = Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE;
        let bufs: Vec<_> = (0..depth)
            .map(|_| ctx.reg_mr(q.pd(), BLOCK as u64, access).expect("buffer"))
            .collect();
        let blocks = 1000u64;
        let mut lba = 12345u64;
        let mut next_lba = || {
            lba = lba
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (lba >> 33) % blocks
        };
        let cmd = |slba: u64| Command::Nvme {
            nsid: 1,
            command: if write {
                SqeCommand::Write(RwCommand::new(slba, 1))
            } else {
                SqeCommand::Read(RwCommand::new(slba, 1))
            },
        };
        let t = Instant::now();
        let mut inflight: std::collections::VecDeque<(u16, usize)> = Default::default();
        let mut done = 0u32;
        let mut sent = 0u32;
        while done < ios {
            while inflight.len() < depth as usize && sent < ios {
                let slot = (sent % u32::from(depth)) as usize;
                let b = &bufs[slot];
                let cid = q
                    .submit(
                        &cmd(next_lba()),
                        SglRepr::keyed(b.addr, BLOCK as u32, b.rkey),
                        &[],
                    )
                    .expect("submit");
                inflight.push_back((cid, slot));
                sent += 1;
            }
            let (cid, _) = inflight.pop_front().expect("in flight");
            let r = q
                .wait_response(cid, Duration::from_secs(5))
                .await
                .expect("response");
            assert!(r.cqe.status.is_success(), "{}", r.cqe.status);
            done += 1;
        }
        t.elapsed()
    });
    let iops = f64::from(ios) / elapsed.as_secs_f64();
    let name = format!(
        "datapath.{}.qd{depth}",
        if write { "write" } else { "read" }
    );
    figure(&format!("{name}.iops"), iops, "io/s");
    figure(&format!("{name}.ns_per_io"), 1e9 / iops, "ns");
    figure(
        &format!("{name}.ratio_to_memcpy"),
        iops / (1e9 / bound_ns),
        "",
    );
}

fn replay_figure() {
    let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("nvmf-conform")))
        .filter(|p| p.is_file())
    else {
        println!(
            "# replay: nvmf-conform not built next to this bench (cargo build --release -p suites)"
        );
        return;
    };
    let case = "datapath.write-read.lba-4096";
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let ok = std::process::Command::new(&bin)
            .args(["replay", case, "--seed", "42"])
            .output()
            .is_ok_and(|o| o.status.code() == Some(0));
        best = best.min(t.elapsed());
        if !ok {
            println!("# replay: `nvmf-conform replay {case}` did not pass");
            return;
        }
    }
    println!("# replay {case} --seed 42, process start included, best of 5");
    figure("replay.wall", best.as_secs_f64() * 1e3, "ms");
}

fn rss_figure() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| {
                l[k.len()..]
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    let staging = Dut::staging_len_for(&harness::api::Profile::builtin("full").unwrap().caps);
    figure("memory.peak_rss", kib("VmHWM:") / 1024.0, "MiB");
    figure("memory.rss", kib("VmRSS:") / 1024.0, "MiB");
    figure("memory.staging", staging as f64 / 1024.0, "KiB");
}
