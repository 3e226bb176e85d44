#!/usr/bin/env bash
# Stage e, run in each of two VMs joined by a UDP socket link (ci/softroce/twonode.sh):
# the target VM serves a null_blk namespace with the kernel's nvmet-rdma, the initiator VM
# discovers, connects, verifies data, runs a short fio and disconnects. Then two-host mode:
# the target VM runs nvmf-reference-target --control, the initiator VM nvmf-conform run
# --connect against it (areas connect, recovery and security). Unlike one VM, where rxe
# short-circuits its own QPs, every RoCEv2 packet crosses the virtual wire.
# The VMs meet through files in the shared /mnt/sync directory.
# Kernel arguments: nvmf_role=target|initiator, nvmf_fio_runtime (s, default 5).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROLE=$(karg role "")
TARGET_IP=10.0.0.1
INITIATOR_IP=10.0.0.2
NQN=nqn.2026-11.io.nvmf-conform:softroce-twonode
PORT=4420
CONTROL=$TARGET_IP:4800
SYNC=/mnt/sync
RUNTIME=$(karg fio_runtime 5)
WAIT=300               # longest wait for the other VM, in seconds

# Waits for the other VM's file SYNC/NAME, at most SECS (default WAIT) seconds.
await() {
  local n=0 bound=${2:-$WAIT}
  until [ -e "$SYNC/$1" ]; do
    n=$((n + 1)); [ $n -lt $((bound * 2)) ] || { echo "gave up waiting for $1"; return 1; }
    sleep 0.5
  done
}

# Both sides see each other over the wire before RDMA starts.
ping_peer() {
  local n=0
  until ping -c1 -W1 "$1" >/dev/null 2>&1; do
    n=$((n + 1)); [ $n -lt 120 ] || { echo "peer $1 unreachable"; return 1; }
  done
  say "ping $1: ok"
}

target() {
  setup_rxe "$TARGET_IP"
  ping_peer "$INITIATOR_IP"
  kernel_target_start "$NQN" "$(null_blk_start)" "$TARGET_IP" "$PORT"
  touch "$SYNC/target-ready"
  await initiator-done
  rdma statistic show link rxe0/1 2>/dev/null | head -5 || true
  kernel_target_stop "$NQN"
  # the initiator's verdict is the stage's
  [ "$(cat "$SYNC/initiator-verdict")" = pass ]
}

# Two-host mode's target side: the control channel until the initiator is done.
remote_target() {
  offers_verbs "$BINS/nvmf-reference-target" || { touch "$SYNC/control-none"; skip "nvmf-reference-target has no --fabric verbs in this build"; }
  control_target_start "$CONTROL" "$RESULTS/control-target.log" || { touch "$SYNC/control-none"; return 1; }
  # the lab secret travels to the initiator VM over the shared folder (the VMs' own link)
  cp "$LAB_SECRET" "$SYNC/lab.secret"
  touch "$SYNC/control-ready"
  await remote-done 1200
  control_target_stop
}

# Two-host mode's initiator side: the whole catalog against the target VM.
remote_initiator() {
  local n=0
  until [ -e "$SYNC/control-ready" ] || [ -e "$SYNC/control-none" ]; do
    n=$((n + 1)); [ $n -lt $((WAIT * 2)) ] || { echo "no control channel from the target VM"; return 1; }
    sleep 0.5
  done
  [ -e "$SYNC/control-ready" ] || skip "the target VM has no control channel"
  install -m 600 "$SYNC/lab.secret" "$LAB_SECRET"
  offers_verbs "$BINS/nvmf-conform" run || skip "nvmf-conform has no --fabric verbs in this build"
  local rc=0
  ping_peer "$TARGET_IP"
  remote_conform "$CONTROL" "$(karg timeout_scale 8)" /tmp/conform-e || rc=$?
  cp -r /tmp/conform-e "$RESULTS/conform-e"
  return $rc
}

# The initiator always says it is done, so the target VM does not wait out its bound.
remote_initiator_stage() {
  local rc=0
  run_strict remote_initiator || rc=$?
  touch "$SYNC/remote-done"
  return $rc
}

initiator() {
  local dev rw qd
  setup_rxe "$INITIATOR_IP"
  setup_host_identity
  ping_peer "$TARGET_IP"
  await target-ready
  [ "$(discover_nqn "$TARGET_IP" "$PORT")" = "$NQN" ]
  dev=$(nvme_connect "$TARGET_IP" "$PORT" "$NQN")
  verify_device "$dev"
  for qd in 1 32; do
    for rw in randread randwrite; do fio_job twonode "$dev" "$rw" "$qd" 1 "$RUNTIME"; done
  done
  nvme disconnect -n "$NQN"
  echo "rxe0 counters: sent $(cat /sys/class/infiniband/rxe0/ports/1/hw_counters/sent_pkts)" \
    "received $(cat /sys/class/infiniband/rxe0/ports/1/hw_counters/rcvd_pkts) packets"
}

# The initiator always tells the target it is done, pass or fail, so neither VM waits out
# its timeout for the other.
initiator_stage() {
  local rc=0
  run_strict initiator || rc=$?
  if [ $rc = 0 ]; then echo pass > "$SYNC/initiator-verdict"; else echo fail > "$SYNC/initiator-verdict"; fi
  touch "$SYNC/initiator-done"
  return $rc
}

main() {
  case $ROLE in
    target)
      local rc=0
      run_stage e-twonode-target target || rc=1
      run_stage e-twonode-remote-target remote_target || rc=1
      return $rc ;;
    initiator)
      local rc=0
      run_stage e-twonode-initiator initiator_stage || rc=1
      run_stage e-twonode-remote remote_initiator_stage || rc=1
      return $rc ;;
    *) echo "twonode.sh: nvmf_role=target|initiator missing from the kernel arguments"; return 2 ;;
  esac
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here;
# run_strict (lib.sh) runs one function of this script in a new bash
case ${NVMF_STAGE_FUNC:-} in "") main; exit $? ;; *) strict_body; exit $? ;; esac
