#!/usr/bin/env bash
# Stage e: two soft-RoCE VMs, kernel NVMe-oF target in one and initiator in the other,
# their NICs joined by a QEMU UDP socket netdev (TCP socket links lose rxe's traffic), so
# RoCEv2 packets really cross a wire. One vCPU each: the two VMs share the host's cores.
#
#   ci/softroce/twonode.sh [--results DIR] [--timeout SECS] [--bins DIR]
# --bins: the built binaries to share (nvmf-reference-target and nvmf-conform with the verbs
# feature, for the two-host part; ci.sh passes its own). Without them that part skips.
# Results: DIR/target and DIR/initiator (each VM's stages/ and console.log), DIR/sync.
# Exit status 0 when both VMs' stages passed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RESULTS=$VM_CACHE/twonode
BINS_ARGS=()
TIMEOUT=1500          # the two-host catalog part takes most of it under TCG with 1 vCPU
while [ $# -gt 0 ]; do
  case $1 in
    --results) RESULTS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --bins) BINS_ARGS=(--bins "$(cd "$2" && pwd)"); shift 2 ;;
    *) echo "usage: $0 [--results DIR] [--timeout SECS] [--bins DIR]" >&2; exit 2 ;;
  esac
done

# A free UDP port pair on the loopback for the link (two runs on one machine do not collide).
free_udp_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

main() {
  local sync a b t0=$SECONDS rc_t=0 rc_i=0
  rm -rf "$RESULTS"
  mkdir -p "$RESULTS"
  sync=$RESULTS/sync
  mkdir -p "$sync"
  a=$(free_udp_port)
  b=$(free_udp_port)
  local dev="-device virtio-net-pci,netdev=n0,romfile=,mac=52:54:00:12:34"
  log "two VMs, UDP link 127.0.0.1:$a <-> 127.0.0.1:$b"
  "$SOFTROCE_DIR/run-vm.sh" --smp 1 --timeout "$TIMEOUT" --results "$RESULTS/target" --sync "$sync" "${BINS_ARGS[@]}" \
    --net "-netdev socket,id=n0,localaddr=127.0.0.1:$a,udp=127.0.0.1:$b $dev:01" \
    --append "nvmf_role=target" twonode.sh &
  local target_pid=$!
  "$SOFTROCE_DIR/run-vm.sh" --smp 1 --timeout "$TIMEOUT" --results "$RESULTS/initiator" --sync "$sync" "${BINS_ARGS[@]}" \
    --net "-netdev socket,id=n0,localaddr=127.0.0.1:$b,udp=127.0.0.1:$a $dev:02" \
    --append "nvmf_role=initiator" twonode.sh || rc_i=$?
  wait "$target_pid" || rc_t=$?
  log "two-VM run: target exit $rc_t, initiator exit $rc_i, $((SECONDS - t0)) s"
  [ $rc_t = 0 ] && [ $rc_i = 0 ]
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here
main "$@"; exit $?
