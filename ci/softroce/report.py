#!/usr/bin/env python3
"""Turns a soft-RoCE run's results directory into reports: junit.xml (one test case per stage,
skips with their reason; stage a's contract cases as a second suite), fio.md (reference target beside kernel target: IOPS and mean
latency per job, median over the repetitions with the min-max spread), blktests.md (stage t: each
blktests test's result against the reference target beside the kernel target) and summary.json.

    report.py RESULTS_DIR REPORT_DIR [--suite NAME]
Exit status: 0 when no stage failed, 1 otherwise.
"""
import glob
import json
import os
import re
import statistics
import sys
from xml.sax.saxutils import escape, quoteattr

# The stages' order and what they check, for the reports.
STAGES = {
    "a-contract-verbs": "the 96 fabric contract cases on rxe0 (cargo's fabric_contract test binary, NVMF_CONFORM_FABRIC=verbs)",
    "b-conform-verbs": "offload catalog on rxe0 (nvmf-conform run --fabric verbs --device rxe0)",
    "p-plugin-memory": "offload catalog on rxe0 through plugins whose doorbells are memory (ABI 2): the reference plugin with doorbells=memory and a PRP window (every area), fixtures/plugins/nic_shim.c over it (datapath and the fault areas)",
    "s-soak-verbs": "nvmf-conform soak on rxe0 for 60 s: random workloads against the embedded reference target, the model oracle, timeouts / PCI errors / media errors / target restarts",
    "r-conform-remote": "two-host mode in one VM: nvmf-reference-target --control on loopback TCP, nvmf-conform run --connect over rxe0 (areas connect, recovery, security)",
    "c-reference-target": "nvmf-reference-target --fabric verbs: discover, connect -t rdma, dd+cmp, fio verify, disconnect",
    "c-reference-target-fio": "fio 4 KiB randread/randwrite QD 1/32 against the reference target",
    "d-kernel-target": "kernel nvmet-rdma over rxe0: discover, connect -t rdma, dd+cmp, fio verify, disconnect",
    "d-kernel-target-fio": "fio 4 KiB randread/randwrite QD 1/32 against the kernel target",
    "v-vfio-check": "QEMU's NVMe controller bound to vfio-pci and driven from userspace (nvmf-reference-target --vfio-check): bring-up, Identify, reads, the blkdebug media error 0x281, a write read back",
    "v-vfio-recovery": "integrity under real faults on the reference target's VFIO backend: the kernel initiator writes and reads back 64 chunks while a PCI error (controller reset and brought back) and a stalled read (namespace quarantined until the controller finished it) are injected; lost 0, corrupt 0",
    "v-vfio-recovery-backing-store": "after the faults, the controller's backing file holds every chunk's last acknowledged write, read from the host",
    "v-vfio-fio": "fio 4 KiB randread/randwrite QD 1/32 on QEMU's NVMe controller, served in turn by the reference target (VFIO backend) and by the kernel's nvmet-rdma (nvme driver, block-device namespace), 3 repetitions",
    "v-lab-inject": "a lab's faults on QEMU's NVMe controller from the guest (nvmf-conform inject): refusals without consent or without vfio-pci; bus-master-off, memory-off, reset, bus-reset, remove each held 1 s, seen, undone, the controller reading through VFIO afterwards",
    "v-vfio-faults": "real faults from the host's fault broker on the VFIO-driven controller: a read stalled on the backing store gets no completion while CSTS stays ready and completes once resumed; an AER error on the root port fires VFIO's error eventfd and the reset controller completes no more",
    "v-vfio-backing-store": "the block written through VFIO is in the controller's backing file, read from the host",
    "v-vfio-initiator": "the Linux kernel initiator over rxe0 to the reference target serving QEMU's NVMe controller through VFIO (the engine's queue pair in its own memory): dd write/read-back, fio crc32c verify, the media error reaching the host as EIO, the I/O offloaded",
    "v-vfio-initiator-backing-store": "the 8 MiB the kernel initiator wrote through the reference target's VFIO backend are in the controller's backing file, read from the host",
    "t-blktests": "blktests' nvme group (the CI selection, ci/softroce/in-vm/blktests/stage.sh) over rdma against nvmf-reference-target and the kernel's nvmet-rdma, each an external target through NVME_TARGET_CONTROL, 16 MiB namespaces; fails when nvme/029 does not pass against the reference target or a test passes against the kernel target only",
    "e-twonode-target": "two VMs over a UDP socket link: the kernel nvmet-rdma target's VM",
    "e-twonode-initiator": "two VMs over a UDP socket link: the initiator's VM (discover, connect, dd+cmp, fio verify, fio, disconnect)",
    "e-twonode-remote-target": "two VMs: the target VM's nvmf-reference-target --control --fabric verbs, serving the initiator VM's runner",
    "e-twonode-remote": "two VMs: nvmf-conform run --connect against the target VM's nvmf-reference-target --control (areas connect, recovery, security)",
}
JOBS = ["randread-qd1", "randwrite-qd1", "randread-qd32", "randwrite-qd32"]


def clean(text):
    """Text as XML 1.0 allows it: the console's escape sequences and other controls dropped."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd]", "", text)


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def stage_results(results):
    """[(id, verdict, reason, seconds, log tail)] for every stage that left a status."""
    found = {}
    for status_file in glob.glob(os.path.join(results, "**", "stages", "*.status"), recursive=True):
        sid = os.path.basename(status_file)[: -len(".status")]
        status = read(status_file)
        verdict, _, reason = status.partition(":")
        base = status_file[: -len(".status")]
        log = read(base + ".log")
        found[sid] = (sid, verdict.strip(), reason.strip(), read(base + ".seconds", "0"), log[-4000:], status_file)
    # a VM whose run failed outside any stage (did not finish, script error) is a failure too
    for console in glob.glob(os.path.join(results, "**", "console.log"), recursive=True):
        run_dir = os.path.dirname(console)
        rc = read(os.path.join(run_dir, "rc"), "none")
        own = [v for k, v in found.items() if os.path.dirname(v[5]) == os.path.join(run_dir, "stages")]
        if rc != "0" and not any(v[1] == "fail" for v in own):
            rel = os.path.relpath(run_dir, results)
            name = "vm-run" if rel == "." else "vm-run " + rel
            reason = "the VM did not finish" if rc == "none" else f"the in-VM script exited {rc} outside any stage"
            found[name] = (name, "fail", reason + " (see console.log)", "0", read(console)[-4000:], console)
    order = list(STAGES) + sorted(set(found) - set(STAGES))
    return [found[s][:5] for s in order if s in found]


def test_binary_cases(path):
    """[(test name, verdict, reason)] from a Rust test binary's output run with
    --test-threads=1 --nocapture: "test NAME ... " then the test's own output, then ok or
    FAILED. A case that printed "SKIP id: reason" and passed is a skip."""
    cases = []
    name, body = None, []

    def close():
        if name is None:
            return
        text = "\n".join(body).strip()
        lines = [l for l in text.splitlines() if l.strip()]
        last = lines[-1].strip() if lines else ""
        skip = re.search(r"SKIP [^ ]+: (.*)", text)
        if last.endswith("ok") and not last.endswith("FAILED"):
            cases.append((name, "skip", skip.group(1)) if skip else (name, "pass", ""))
        elif last.endswith("FAILED"):
            msg = next((lines[i + 1] for i, l in enumerate(lines[:-1]) if "panicked at" in l), "failed")
            cases.append((name, "fail", msg))
        else:
            cases.append((name, "fail", "no verdict (the test binary stopped?)"))

    for line in read(path).splitlines():
        m = re.match(r"^test (\S+) \.\.\. ?(.*)$", line)
        if m:
            close()
            name, body = m.group(1), [m.group(2)]
        elif line.startswith(("failures:", "test result:")):
            close()
            name, body = None, []
        elif name is not None:
            body.append(line)
    close()
    return cases


def suite_xml(suite, cases, times=None):
    """One <testsuite>: cases are (name, verdict, reason, seconds, log)."""
    failures = sum(1 for c in cases if c[1] not in ("pass", "skip"))
    skipped = sum(1 for c in cases if c[1] == "skip")
    total = sum(float(c[3]) for c in cases)
    out = [f'  <testsuite name={quoteattr(suite)} tests="{len(cases)}" failures="{failures}" '
           f'errors="0" skipped="{skipped}" time="{total:.3f}">']
    for sid, verdict, reason, seconds, log in cases:
        out.append(f'    <testcase classname={quoteattr(suite)} name={quoteattr(sid)} time="{float(seconds):.3f}">')
        if verdict == "fail":
            out.append(f'      <failure type="stage" message={quoteattr(clean(reason) or "failed")}>{escape(clean(log))}</failure>')
        elif verdict == "skip":
            out.append(f'      <skipped message={quoteattr(clean(reason))}/>')
        elif verdict != "pass":
            out.append(f'      <failure type="stage" message={quoteattr("unknown status: " + verdict)}/>')
        if sid in STAGES:
            out.append(f'      <system-out>{escape(STAGES[sid])}</system-out>')
        out.append("    </testcase>")
    out.append("  </testsuite>")
    return out, len(cases), failures, total


def junit(stages, suite, results):
    """The stages as one suite; each stage's test binary output (stage a) as a suite of its
    cases, so a CI dashboard shows which contract case failed or skipped and why."""
    suites = [(suite, stages)]
    for out in sorted(glob.glob(os.path.join(results, "**", "contract-verbs.out"), recursive=True)):
        cases = [(n, v, r, "0", r) for n, v, r in test_binary_cases(out)]
        if cases:
            suites.append((suite + ".a-contract-verbs", cases))
    body, tests, failures, total = [], 0, 0, 0.0
    for name, cases in suites:
        xml, n, f, t = suite_xml(name, cases)
        body += xml
        tests, failures, total = tests + n, failures + f, total + t
    return "\n".join(['<?xml version="1.0" encoding="UTF-8"?>',
                      f'<testsuites name={quoteattr(suite)} tests="{tests}" failures="{failures}" '
                      f'errors="0" time="{total:.3f}">'] + body + ["</testsuites>"]) + "\n"


def fio_runs(results, prefix=""):
    """{(target, job): [(iops, mean latency in us)]} from every fio JSON of the run whose name
    starts with PREFIX then the target (stage v's files start with "vfio-")."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(results, "**", "fio", "*.json"), recursive=True)):
        m = re.match(re.escape(prefix) + r"(kernel|reference)-(\w+-qd\d+)-r\d+\.json$", os.path.basename(path))
        if not m:
            continue
        with open(path) as f:
            job = json.load(f)["jobs"][0]
        side = job["read"] if job["read"]["io_bytes"] else job["write"]
        runs.setdefault((m.group(1), m.group(2)), []).append((side["iops"], side["lat_ns"]["mean"] / 1000))
    return runs


def cell(values, fmt):
    if not values:
        return "—"
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})" if len(values) > 1 else fmt.format(med)


def fio_table(runs, meta):
    reps = max((len(v) for v in runs.values()), default=0)
    lines = [
        "| job (4 KiB, libaio, O_DIRECT) | reference IOPS | kernel IOPS | reference / kernel "
        "| reference mean lat (µs) | kernel mean lat (µs) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for job in JOBS:
        ref = runs.get(("reference", job), [])
        ker = runs.get(("kernel", job), [])
        ratio = "—"
        if ref and ker:
            ratio = f"{statistics.median(r[0] for r in ref) / statistics.median(k[0] for k in ker):.2f}"
        lines.append(f"| {job} | {cell([r[0] for r in ref], '{:.0f}')} | {cell([k[0] for k in ker], '{:.0f}')} "
                     f"| {ratio} | {cell([r[1] for r in ref], '{:.0f}')} | {cell([k[1] for k in ker], '{:.0f}')} |")
    note = (f"Median of {reps} interleaved repetitions (min–max in brackets); "
            f"{meta.get('fio_runtime', '?')} s per job; kernel {meta.get('kernel', '?')}, "
            f"{meta.get('cpus', '?')} vCPUs under QEMU TCG, {meta.get('fio', 'fio')}. "
            "— : that target did not run (junit.xml gives the reason).")
    return "\n".join(lines) + "\n\n" + note + "\n"


def blktests_results(results):
    """{target: {test: {key: value}}} from blktests' result files (tab-separated key and value
    per line) under RESULTS/**/blktests/TARGET/nodev*/GROUP/NNN."""
    out = {}
    pattern = os.path.join(results, "**", "blktests", "*", "nodev*", "*", "[0-9][0-9][0-9]")
    for path in sorted(glob.glob(pattern, recursive=True)):
        parts = path.split(os.sep)
        target, test = parts[-4], parts[-2] + "/" + parts[-1]
        fields = dict(l.split("\t", 1) for l in read(path).splitlines() if "\t" in l)
        out.setdefault(target, {})[test] = fields
    # blktests prints a test's reasons for not running it on its console only: the indented
    # lines after "nvme/NNN (...) [not run]" (not "    KEY ... VALUE", its last run's figures)
    for log in glob.glob(os.path.join(results, "**", "blktests", "*.log"), recursive=True):
        target = os.path.basename(log)[: -len(".log")]
        test, reasons = None, {}
        for line in clean(read(log)).replace("\r", "\n").splitlines():
            m = re.match(r"^(\S+/\d{3}) .*\[not run\]\s*$", line)
            if m:
                test = m.group(1)
            elif test and line.startswith("    ") and line.strip() and not re.match(r"^\s+\S+\s+\.\.\.", line):
                reasons.setdefault(test, [])
                if line.strip() not in reasons[test]:
                    reasons[test].append(line.strip())
            elif not line.startswith(" "):
                test = None
        for t, rs in reasons.items():
            if t in out.get(target, {}):
                out[target][t].setdefault("reason", "; ".join(rs))
    return out


def blktests_table(runs, meta):
    """The side-by-side table of blktests.md."""
    def cell(f):
        if not f:
            return "—"
        status = f.get("status", "?")
        if status == "not run":
            return "not run: " + f.get("reason", "").replace("|", "/").strip()
        runtime = f.get("runtime", "").split()[0] if f.get("runtime") else ""
        return f"**{status}**" + (f" ({runtime})" if runtime else "")
    tests = sorted({t for r in runs.values() for t in r})
    lines = ["| test | what it checks | reference target | kernel nvmet-rdma |", "|---|---|---|---|"]
    for t in tests:
        ref, ker = runs.get("reference", {}).get(t), runs.get("kernel", {}).get(t)
        again = runs.get("reference-again", {}).get(t)
        desc = ((ref or ker or {}).get("description", "")).replace("|", "/")
        ref_cell = cell(ref) + (f", then {cell(again)} on its re-run" if again else "")
        lines.append(f"| {t} | {desc} | {ref_cell} | {cell(ker)} |")
    count = lambda r, v: sum(1 for f in r.values() if f.get("status") == v)
    totals = ", ".join(
        f"{name}: {count(runs.get(name, {}), 'pass')} passed, {count(runs.get(name, {}), 'fail')} failed, "
        f"{count(runs.get(name, {}), 'not run')} not run"
        for name in ("reference", "kernel"))
    note = (f"blktests (vendored, `ci/softroce/vendor/blktests`) over rdma on rxe0, 16 MiB namespaces, "
            f"each target external through NVME_TARGET_CONTROL; kernel {meta.get('kernel', '?')}, "
            f"{meta.get('cpus', '?')} vCPUs under QEMU TCG. {totals}. Runtimes in seconds; "
            "— : no result (the run was cut short, or the test was not selected for that target; "
            "with `nvmf_blktests_kernel=on-failure`, as CI runs it, the kernel target runs only "
            "the tests the reference target did not pass).")
    return "\n".join(lines) + "\n\n" + note + "\n"


def main():
    args = sys.argv[1:]
    suite = "softroce"
    if "--suite" in args:
        i = args.index("--suite")
        suite = args[i + 1]
        del args[i : i + 2]
    results, report = args
    os.makedirs(report, exist_ok=True)
    stages = stage_results(results)
    metas = sorted(glob.glob(os.path.join(results, "**", "meta.txt"), recursive=True), key=len)
    meta = dict(l.split("=", 1) for l in read(metas[0]).splitlines() if "=" in l) if metas else {}
    with open(os.path.join(report, "junit.xml"), "w") as f:
        f.write(junit(stages, suite, results))
    runs = fio_runs(results)
    vfio_runs = fio_runs(results, "vfio-")
    vfio_metas = glob.glob(os.path.join(results, "vfio", "meta.txt"))
    vfio_meta = dict(l.split("=", 1) for l in read(vfio_metas[0]).splitlines() if "=" in l) if vfio_metas else {}
    if runs or vfio_runs:
        with open(os.path.join(report, "fio.md"), "w") as f:
            f.write("# Soft-RoCE fio: reference target vs kernel nvmet-rdma\n\n")
            if runs:
                f.write("## RAM namespaces (stages c and d)\n\n" + fio_table(runs, meta) + "\n")
            if vfio_runs:
                f.write("## QEMU's NVMe controller, the same one for both (stage v-vfio-fio)\n\n"
                        "The reference target drives it through its VFIO backend; nvmet-rdma serves "
                        "it as a block device (the nvme driver), rebound between the two in turn.\n\n"
                        + fio_table(vfio_runs, vfio_meta))
    blk = blktests_results(results)
    if blk:
        with open(os.path.join(report, "blktests.md"), "w") as f:
            f.write("# blktests' nvme group: reference target vs kernel nvmet-rdma\n\n" + blktests_table(blk, meta))
    summary = {"stages": [{"id": s[0], "verdict": s[1], "reason": s[2], "seconds": float(s[3])} for s in stages],
               "meta": meta,
               "fio": {f"{t}/{j}": [{"iops": i, "mean_lat_us": l} for i, l in v] for (t, j), v in runs.items()},
               "blktests": {t: {k: v.get("status") for k, v in r.items()} for t, r in blk.items()},
               "fio_vfio": {f"{t}/{j}": [{"iops": i, "mean_lat_us": l} for i, l in v] for (t, j), v in vfio_runs.items()}}
    with open(os.path.join(report, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    for sid, verdict, reason, seconds, _ in stages:
        print(f"  {sid:26} {verdict:5} {float(seconds):6.1f} s  {reason}")
    if not stages:
        print("no stage reported anything", file=sys.stderr)
        return 1
    return 1 if any(s[1] not in ("pass", "skip") for s in stages) else 0


if __name__ == "__main__":
    sys.exit(main())
