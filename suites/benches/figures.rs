//! `cargo bench -p suites --bench figures`: the figures of docs/performance.md, printed.
//!
//! - the whole catalog against the reference target on the simulated fabric: wall time and
//!   cases per second (snapshots compared, as `nvmf-conform run` does);
//! - the offload engine's data path: 4 KiB random reads and writes at queue depth 1 and 32
//!   on one core, IOPS and µs per I/O, next to the memcpy bound measured in the same run;
//! - replaying one case by seed, process start included (`nvmf-conform replay`, when the
//!   binary is built next to this bench);
//! - the process's resident memory while serving, next to the staging buffer.
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
    println!("# nvmf-conform figures ({})", machine());
    if wants("catalog") {
        catalog_figures();
    }
    if wants("datapath") {
        let ios = if quick { 2_000 } else { 20_000 };
        let copy_ns = memcpy_ns();
        println!(
            "memcpy bound: {copy_ns:.0} ns per 4 KiB copy = {:.0} copies/s",
            1e9 / copy_ns
        );
        for (write, depth) in [(false, 1u16), (true, 1), (false, 32), (true, 32)] {
            datapath(write, depth, ios, copy_ns);
        }
    }
    if wants("replay") {
        replay_figure();
    }
    if wants("memory") {
        rss_figure();
    }
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
    println!(
        "catalog: {} cases ({} passed, {} skipped) in {:.2} s = {:.0} cases/s",
        r.cases.len(),
        r.count("pass"),
        r.count("skip"),
        wall.as_secs_f64(),
        r.cases.len() as f64 / wall.as_secs_f64()
    );
}

/// Nanoseconds to copy 4 KiB, from the best of several rounds.
fn memcpy_ns() -> f64 {
    let src = vec![0x5au8; BLOCK];
    let mut dst = vec![0u8; BLOCK];
    let rounds = 200_000;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..rounds {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst)[i % BLOCK] ^= 1;
        }
        best = best.min(t.elapsed().as_nanos() as f64 / rounds as f64);
    }
    best
}

/// `ios` random 4 KiB reads or writes at `depth` through the offloaded path.
fn datapath(write: bool, depth: u16, ios: u32, copy_ns: f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
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
    println!(
        "4 KiB random {:5} QD{depth:<2}: {iops:>9.0} IOPS, {:>7.2} µs per I/O ({:.4} x the memcpy bound)",
        if write { "write" } else { "read" },
        1e6 / iops,
        iops / (1e9 / copy_ns)
    );
}

fn replay_figure() {
    let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("nvmf-conform")))
        .filter(|p| p.is_file())
    else {
        println!(
            "replay: nvmf-conform not built next to this bench (cargo build --release -p suites)"
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
            println!("replay: `nvmf-conform replay {case}` did not pass");
            return;
        }
    }
    println!(
        "replay {case} --seed 42, process start included: {:.0} ms (best of 5)",
        best.as_secs_f64() * 1e3
    );
}

fn rss_figure() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let staging = Dut::staging_len_for(&harness::api::Profile::builtin("full").unwrap().caps);
    println!(
        "memory: VmHWM {} (peak), VmRSS {} now; one session's staging buffer {} KiB",
        field("VmHWM:"),
        field("VmRSS:"),
        staging / 1024
    );
}
