#!/usr/bin/env bash
# Stage e, run in each of two VMs joined by a UDP socket link (ci/softroce/twonode.sh):
# the target VM serves a null_blk namespace with the kernel's nvmet-rdma, the initiator VM
# discovers, connects, verifies data, runs a short fio and disconnects. Unlike one VM,
# where rxe short-circuits its own QPs, every RoCEv2 packet crosses the virtual wire.
# The VMs meet through files in the shared /mnt/sync directory.
# Kernel arguments: nvmf_role=target|initiator, nvmf_fio_runtime (s, default 5).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROLE=$(karg role "")
TARGET_IP=10.0.0.1
INITIATOR_IP=10.0.0.2
NQN=nqn.2026-11.io.nvmf-conform:softroce-twonode
PORT=4420
SYNC=/mnt/sync
RUNTIME=$(karg fio_runtime 5)
WAIT=300               # longest wait for the other VM, in seconds

# Waits for the other VM's file SYNC/NAME.
await() {
  local n=0
  until [ -e "$SYNC/$1" ]; do
    n=$((n + 1)); [ $n -lt $((WAIT * 2)) ] || { echo "gave up waiting for $1"; return 1; }
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
    target) run_stage e-twonode-target target ;;
    initiator) run_stage e-twonode-initiator initiator_stage ;;
    *) echo "twonode.sh: nvmf_role=target|initiator missing from the kernel arguments"; return 2 ;;
  esac
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here;
# run_strict (lib.sh) runs one function of this script in a new bash
case ${NVMF_STAGE_FUNC:-} in "") main; exit $? ;; *) strict_body; exit $? ;; esac
