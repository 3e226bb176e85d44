#!/usr/bin/env bash
# The single-VM soft-RoCE stages, run by ci/softroce/ci.sh in one boot:
#   a  contract-verbs      the fabric contract cases on real verbs (rxe0): cargo test's binary
#   b  conform-verbs       nvmf-conform's offload catalog on real verbs (rxe0)
#   p  plugin-memory       the same through plugins whose doorbells are memory (ABI 2): the
#                          reference plugin (whole catalog) and the C NIC shim (fault areas)
#   r  conform-remote      two-host mode in one VM: nvmf-conform run --connect against
#                          nvmf-reference-target --control (loopback TCP, RDMA over rxe0)
#   s  soak-verbs          nvmf-conform soak on rxe0: random workloads, the model oracle, faults
#   d  kernel-target       the kernel's nvmet-rdma target: discover, connect, verify, disconnect
#   c  reference-target    the same against nvmf-reference-target --fabric verbs
#   d/c  ...-fio           4 KiB randread/randwrite at QD 1 and 32 on both targets, interleaved
#   t  blktests            blktests' nvme group (a selection) against both targets over rdma
#                          (blktests/stage.sh)
# a, b, r, s and c skip, with the reason, while the shared binaries do not offer --fabric verbs.
# Settings (kernel arguments, from run-vm.sh --append): nvmf_fio_runtime (s, default 10),
# nvmf_fio_reps (default 3), nvmf_c_rounds (stage c's sessions, default 1), nvmf_stages
# (default "a,b,p,r,s,c,d,t"), nvmf_soak_duration (stage s, s, default 60), nvmf_soak_seed, nvmf_blktests and more (blktests/stage.sh), nvmf_conform_filter (stage b, default: every offload area),
# nvmf_conform_mode (stage b: run, or replay = one process per case under nvmf_case_bound
# seconds), nvmf_timeout_scale (default 8), nvmf_target_log
# (stage c's --log-level, default info), nvmf_contract_bin (stage a).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/blktests/stage.sh"

IP=10.0.2.15
KERNEL_NQN=nqn.2026-11.io.nvmf-conform:softroce-kernel
KERNEL_PORT=4420
REF_PORT=4421          # beside the kernel target's port: both stay up for the interleaved runs
CONTROL_PORT=4800      # stage r's control channel (TCP)
# stage b's default: the whole offload catalog (the fabric contract is stage a's)
OFFLOAD_AREAS=caps,srq,ctrl,mapping,connect,admin,datapath,software,srq-verbs,target-io,unsupported,pci-error,timeout,backend-error,recovery,security
RUNTIME=$(karg fio_runtime 10)
REPS=$(karg fio_reps 3)
SELECTED=$(karg stages "a,b,p,r,s,c,d,t" | tr ',' ' ')
TIMEOUT_SCALE=$(karg timeout_scale 8)

selected() { [[ " $SELECTED " == *" $1 "* ]]; }

# a: the 96 fabric contract cases on rxe0: the fabric_contract test binary (cargo test's,
# named by nvmf_contract_bin= relative to the shared binaries) with NVMF_CONFORM_FABRIC=verbs.
# A binary without the verbs fabric skips every case saying so: then the stage skips.
stage_a() {
  local bin
  bin=$(karg contract_bin "")
  [ -n "$bin" ] && [ -x "$BINS/$bin" ] || skip "no fabric_contract test binary shared (ci.sh names it with nvmf_contract_bin=)"
  cd /mnt/repo
  local rc=0 cases skipped_all
  NVMF_CONFORM_FABRIC=verbs "$BINS/$bin" --test-threads=1 --nocapture > /tmp/contract.out 2>&1 || rc=$?
  cp /tmp/contract.out "$RESULTS/contract-verbs.out"
  # with --nocapture a case's SKIP line follows its "test ... " on the same line
  cases=$(grep -c '^test contract_case::' /tmp/contract.out || true)
  skipped_all=$(grep -c 'SKIP [^ ]*: NVMF_CONFORM_FABRIC=verbs: ' /tmp/contract.out || true)
  if [ "$rc" = 0 ] && [ "$skipped_all" -gt 0 ] && [ "$skipped_all" -ge "$cases" ]; then
    skip "$(grep -m1 -o 'SKIP [^ ]*: NVMF_CONFORM_FABRIC=verbs: .*' /tmp/contract.out | sed 's/^SKIP [^ ]*: //')"
  fi
  [ "$cases" -gt 0 ] || { echo "no contract case ran"; rc=1; }
  echo "$cases contract cases; $(grep -c 'SKIP ' /tmp/contract.out || true) skipped (a need rxe does not meet):"
  grep -o 'SKIP .*' /tmp/contract.out | head -40 || true
  # the failing cases with their messages
  grep -A1 'panicked at' /tmp/contract.out | grep -v -e 'panicked at' -e '^--$' | cut -c1-300 || true
  grep '^test result:' /tmp/contract.out
  return "$rc"
}

# b: nvmf-conform on rxe0: the offload catalog (a selection: the whole of it is long
# under emulation). nvmf_shard=i/n runs that shard only (ci.sh alternates the halves by
# commit).
stage_b() {
  [ -x "$BINS/nvmf-conform" ] || skip "no nvmf-conform in the shared binaries"
  offers_verbs "$BINS/nvmf-conform" run || skip "nvmf-conform has no --fabric verbs in this build"
  cd /mnt/repo
  local filters=() f rc=0
  for f in $(karg conform_filter "$OFFLOAD_AREAS" | tr ',' ' '); do filters+=(--filter "$f"); done
  if [ "$(karg conform_mode run)" = replay ]; then
    stage_b_replay "${filters[@]}"
    return
  fi
  local shard
  shard=$(karg shard "")
  "$BINS/nvmf-conform" run --fabric verbs --device rxe0 "${filters[@]}" ${shard:+--shard "$shard"} \
    --snapshots /mnt/repo/suites/snapshots --timeout-scale "$TIMEOUT_SCALE" \
    --report-dir /tmp/conform-b || rc=$?
  cp -r /tmp/conform-b "$RESULTS/conform-b"
  return "$rc"
}

# p: the catalog on rxe0 through plugins that reach their backends as a NIC does: doorbells
# written in memory, completions and PCI errors seen in memory, never a ring_sq / ring_cq /
# status call (plugin ABI 2). First the reference plugin (doorbells=memory, its PRPs bus
# addresses through a window) on every offload area; then fixtures/plugins/nic_shim.c (built
# on the host) over the reference plugin on the fault areas. Reports in conform-p-reference/
# and conform-p-shim/. nvmf_shard=i/n runs that shard of the reference plugin's cases (the
# shim's are few).
PRP_WINDOW=0x100000000000000
verdict_lines() { grep -E '^(FAIL|ERROR|[0-9]+ cases:)' || true; }
stage_p() {
  [ -x "$BINS/nvmf-conform" ] || skip "no nvmf-conform in the shared binaries"
  offers_verbs "$BINS/nvmf-conform" run || skip "nvmf-conform has no --fabric verbs in this build"
  local plugin=$BINS/libnvmf_reference_plugin.so shim=$BINS/libnic_shim.so
  [ -f "$plugin" ] || skip "no libnvmf_reference_plugin.so in the shared binaries"
  cd /mnt/repo
  local filters=() f rc=0
  for f in $(karg conform_filter "$OFFLOAD_AREAS" | tr ',' ' '); do filters+=(--filter "$f"); done
  local shard
  shard=$(karg shard "")
  echo "== the reference plugin, doorbells=memory${shard:+ (shard $shard)}"
  "$BINS/nvmf-conform" run --fabric verbs --device rxe0 "${filters[@]}" ${shard:+--shard "$shard"} \
    --target "plugin:$plugin" --plugin-config "profile=full;doorbells=memory;prp-window=$PRP_WINDOW" \
    --snapshots /mnt/repo/suites/snapshots --timeout-scale "$TIMEOUT_SCALE" \
    --report-dir /tmp/conform-p-reference | verdict_lines || rc=$?
  cp -r /tmp/conform-p-reference "$RESULTS/conform-p-reference"
  if [ ! -f "$shim" ]; then
    echo "no libnic_shim.so in the shared binaries (built by ci.sh with cc): the C shim is not run"
    return 1
  fi
  echo "== fixtures/plugins/nic_shim.c over the reference plugin, doorbells=memory"
  "$BINS/nvmf-conform" run --fabric verbs --device rxe0 \
    --filter datapath --filter pci-error --filter timeout --filter backend-error --filter recovery \
    --target "plugin:$shim" --plugin-config "inner=$plugin;doorbells=memory;profile=full" \
    --snapshots /mnt/repo/suites/snapshots --timeout-scale "$TIMEOUT_SCALE" \
    --report-dir /tmp/conform-p-shim | verdict_lines || rc=$?
  cp -r /tmp/conform-p-shim "$RESULTS/conform-p-shim"
  return "$rc"
}

# Stage b one case at a time (nvmf_conform_mode=replay): each case replayed in its own
# process under a wall-clock bound (nvmf_case_bound, s, default 60), one line per case with
# its verdict and duration (and its whole replay, trace included, in
# conform-b-replay/ID.txt); for finding the case that hangs on a new device.
stage_b_replay() {
  local id t0 out rc=0 bound
  bound=$(karg case_bound 60)
  for id in $("$BINS/nvmf-conform" list "$@" | awk '{ print $1 }'); do
    t0=$(uptime_s)
    out=$(timeout "$bound" "$BINS/nvmf-conform" replay "$id" --fabric verbs --device rxe0 \
            --snapshots /mnt/repo/suites/snapshots --timeout-scale "$TIMEOUT_SCALE" 2>&1) || true
    mkdir -p "$RESULTS/conform-b-replay"
    echo "$out" > "$RESULTS/conform-b-replay/$id.txt"
    echo "$id $(echo "$t0 $(uptime_s)" | awk '{ printf "%.1fs", $2 - $1 }') $(echo "$out" | grep -E '^(PASS|FAIL|SKIP|ERROR)' | tail -1 | cut -c1-200)"
    echo "$out" | grep -qE '^(PASS|SKIP)' || rc=1
  done
  return $rc
}

# r: two-host mode with both processes in this VM: nvmf-reference-target --control on
# loopback TCP, and nvmf-conform run --connect, whose hosts reach the remote target's
# ports over rxe0 (the whole catalog: the control-plane cases start targets there, the others
# use its device through the channel). Before
# c and d, whose targets take ports 4420/4421.
stage_r() {
  [ -x "$BINS/nvmf-conform" ] || skip "no nvmf-conform in the shared binaries"
  offers_verbs "$BINS/nvmf-conform" run || skip "nvmf-conform has no --fabric verbs in this build"
  offers_verbs "$BINS/nvmf-reference-target" || skip "nvmf-reference-target has no --fabric verbs in this build"
  local rc=0 served=()
  # nvmf_remote_target=plugin: the target host serves the reference plugin as a NIC reaches
  # its backends (doorbells in memory) instead of the reference engine
  if [ "$(karg remote_target reference)" = plugin ]; then
    [ -f "$BINS/libnvmf_reference_plugin.so" ] || skip "no libnvmf_reference_plugin.so in the shared binaries"
    served=(--target "plugin:$BINS/libnvmf_reference_plugin.so"
      --plugin-config "profile=full;doorbells=memory;prp-window=$PRP_WINDOW")
  fi
  control_target_start "127.0.0.1:$CONTROL_PORT" "$RESULTS/control-target.log" "${served[@]}"
  # nvmf_shard=i/n runs that shard only (ci.sh alternates the halves by commit)
  remote_conform "127.0.0.1:$CONTROL_PORT" "$TIMEOUT_SCALE" /tmp/conform-r "$(karg shard "")" || rc=$?
  control_target_stop
  cp -r /tmp/conform-r "$RESULTS/conform-r"
  return "$rc"
}

# s: nvmf-conform soak on rxe0 (docs/soak.md): random workloads against the embedded
# reference target, every answer and every block checked against the model, with the faults
# real verbs allow (timeouts, PCI errors, media errors, target restarts; link drops are the
# simulated fabric's), for nvmf_soak_duration seconds (default 60) from seed nvmf_soak_seed
# (ci.sh passes the number of commits; default 1). Before c and d, whose targets take the
# ports.
stage_s() {
  [ -x "$BINS/nvmf-conform" ] || skip "no nvmf-conform in the shared binaries"
  offers_verbs "$BINS/nvmf-conform" run || skip "nvmf-conform has no --fabric verbs in this build"
  cd /mnt/repo
  local rc=0
  "$BINS/nvmf-conform" soak --fabric verbs --device rxe0 --duration "$(karg soak_duration 60)" \
    --seed "$(karg soak_seed 1)" --timeout-scale "$TIMEOUT_SCALE" --report-dir /tmp/soak-s \
    > /tmp/soak-s.out 2>&1 || rc=$?
  cp -r /tmp/soak-s "$RESULTS/soak-s"
  cp /tmp/soak-s.out "$RESULTS/soak-s.out"
  # the last progress line, and the verdict (a divergence prints its replay command)
  tr '\r' '\n' < /tmp/soak-s.out | grep -v '^$' | tail -n 25
  return "$rc"
}

# d: the kernel target on a RAM-backed null_blk, and the kernel initiator in the same VM.
stage_d() {
  local dev
  kernel_target_start "$KERNEL_NQN" "$(null_blk_start)" "$IP" "$KERNEL_PORT"
  [ "$(discover_nqn "$IP" "$KERNEL_PORT")" = "$KERNEL_NQN" ]
  dev=$(nvme_connect "$IP" "$KERNEL_PORT" "$KERNEL_NQN")
  nvme list
  verify_device "$dev"
  nvme disconnect -n "$KERNEL_NQN"
}

# The reference target's configuration: one subsystem any host may reach, one 512 MiB
# RAM namespace with 4 KiB blocks, listening on rxe0's address.
write_reference_config() {
  cat > /tmp/reference.toml <<TOML
profile = "full"
quirks = []

[[port]]
addr = "$IP:$REF_PORT"
subsystem = "nqn.2026-11.io.nvmf-conform:softroce-reference"

[[subsystem]]
nqn = "nqn.2026-11.io.nvmf-conform:softroce-reference"
allow_any_host = true
hosts = []
staging_buf = "4MiB"
queue_depth = 128

[[subsystem.namespace]]
nsid = 1
backing = "ram"
size = "512MiB"
lba_format = "4096"
TOML
}

# c: the same checks against the project's reference target; it keeps serving for the
# interleaved fio runs.
stage_c() {
  [ -x "$BINS/nvmf-reference-target" ] || skip "no nvmf-reference-target in the shared binaries"
  offers_verbs "$BINS/nvmf-reference-target" || skip "nvmf-reference-target has no --fabric verbs in this build"
  write_reference_config
  "$BINS/nvmf-reference-target" --config /tmp/reference.toml --fabric verbs --log-level "$(karg target_log info)" \
    --listen "$IP:$REF_PORT" --duration 36000 > "$RESULTS/reference-target.log" 2>&1 &
  echo $! > /tmp/reference.pid
  local n=0 nqn dev
  until nqn=$(discover_nqn "$IP" "$REF_PORT" 2>/dev/null) && [ -n "$nqn" ]; do
    n=$((n + 1))
    kill -0 "$(cat /tmp/reference.pid)" || { cat "$RESULTS/reference-target.log"; return 1; }
    [ $n -lt 60 ] || { echo "the reference target did not answer discovery in 60 s"; return 1; }
    sleep 1
  done
  echo "$nqn" > /tmp/reference.nqn
  # nvmf_c_rounds=N (default 1): N-1 extra sessions first, each a discovery and a
  # connect/disconnect: a stress run of session after session (it found the passive QP
  # still in RTR when the host's first capsule came: harness/src/fabric/verbs/cm.rs).
  local r rounds
  rounds=$(karg c_rounds 1)
  for r in $(seq 2 "$rounds"); do
    discover_nqn "$IP" "$REF_PORT" > /dev/null
    dev=$(nvme_connect "$IP" "$REF_PORT" "$nqn") || { echo "round $r of $rounds: no device"; return 1; }
    nvme disconnect -n "$nqn" > /dev/null
    say "round $r of $rounds: discover, connect $dev, disconnect: ok"
  done
  dev=$(nvme_connect "$IP" "$REF_PORT" "$nqn")
  nvme list
  verify_device "$dev"
  nvme disconnect -n "$nqn"
}

# The fio comparison. Emulation spreads results by ~18 % between boots and up to ~40 %
# within one, so both targets run in the same boot, job by job in turn, several times.
bench() {
  local -a labels=() devs=()
  local label dev rep rw qd i
  # explicit checks: errexit does not hold here (main calls bench in a pipeline with ||)
  if [ "$(cat "$STAGES/d-kernel-target.status" 2>/dev/null)" = pass ]; then
    if dev=$(nvme_connect "$IP" "$KERNEL_PORT" "$KERNEL_NQN"); then
      labels+=(kernel); devs+=("$dev")
    else
      echo "fail: fio kernel: connect" >> /tmp/bench-failures
    fi
  fi
  if [ "$(cat "$STAGES/c-reference-target.status" 2>/dev/null)" = pass ]; then
    if dev=$(nvme_connect "$IP" "$REF_PORT" "$(cat /tmp/reference.nqn)"); then
      labels+=(reference); devs+=("$dev")
    else
      echo "fail: fio reference: connect" >> /tmp/bench-failures
    fi
  fi
  [ ${#labels[@]} -gt 0 ] || { echo "no target passed its functional stage: nothing to measure"; return 1; }
  say "fio: ${labels[*]}; ${RUNTIME}s per job, $REPS repetitions"
  for rep in $(seq 1 "$REPS"); do
    for qd in 1 32; do
      for rw in randread randwrite; do
        for i in "${!labels[@]}"; do
          fio_job "${labels[$i]}" "${devs[$i]}" "$rw" "$qd" "$rep" "$RUNTIME" \
            || echo "fail: fio ${labels[$i]} $rw qd$qd rep $rep" >> /tmp/bench-failures
        done
      done
    done
  done
  nvme disconnect-all
}

# The per-target fio verdicts: every job of every repetition ran and wrote its JSON.
fio_stage() {
  local label=$1 functional=$2 n
  local status
  status=$(cat "$STAGES/$functional.status" 2>/dev/null || echo "not run")
  [ "$status" = pass ] || skip "$functional did not pass (${status%% (*})"
  if grep "fio $label" /tmp/bench-failures 2>/dev/null; then return 1; fi
  n=$(ls "$FIO_DIR/$label"-*.json 2>/dev/null | wc -l)
  [ "$n" = $((4 * REPS)) ] || { echo "$n fio results for $label, expected $((4 * REPS))"; return 1; }
}
fio_kernel() { fio_stage kernel d-kernel-target; }
fio_reference() { fio_stage reference c-reference-target; }

# What the results depend on, for the report.
write_meta() {
  {
    echo "kernel=$(uname -r)"
    echo "cpus=$(nproc)"
    echo "mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)"
    echo "fio=$(fio --version)"
    echo "nvme_cli=$(nvme version | head -1)"
    echo "fio_runtime=$RUNTIME"
    echo "fio_reps=$REPS"
  } > "$RESULTS/meta.txt"
}

main() {
  local failed=0
  write_meta
  setup_rxe "$IP"
  setup_host_identity
  if selected a; then run_stage a-contract-verbs stage_a || failed=1; fi
  if selected b; then run_stage b-conform-verbs stage_b || failed=1; fi
  if selected p; then run_stage p-plugin-memory stage_p || failed=1; fi
  if selected r; then run_stage r-conform-remote stage_r || failed=1; fi
  if selected s; then run_stage s-soak-verbs stage_s || failed=1; fi
  if selected d; then run_stage d-kernel-target stage_d || failed=1; fi
  if selected c; then run_stage c-reference-target stage_c || failed=1; fi
  if selected c || selected d; then
    bench 2>&1 | tee "$STAGES/bench.log" || true
    if selected d; then run_stage d-kernel-target-fio fio_kernel || failed=1; fi
    if selected c; then run_stage c-reference-target-fio fio_reference || failed=1; fi
  fi
  [ ! -f /tmp/reference.pid ] || kill "$(cat /tmp/reference.pid)" 2>/dev/null || true
  nvme disconnect-all >/dev/null 2>&1 || true
  kernel_target_stop "$KERNEL_NQN" || true
  if selected t; then run_stage t-blktests stage_t || failed=1; fi
  return $failed
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here;
# run_strict (lib.sh) runs one function of this script in a new bash
case ${NVMF_STAGE_FUNC:-} in "") main; exit $? ;; *) strict_body; exit $? ;; esac
