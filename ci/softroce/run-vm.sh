#!/usr/bin/env bash
# Boots the soft-RoCE VM under QEMU's software emulation (TCG: nested KVM is not reliable on
# CI machines), runs one in-VM script and copies its results back.
#
#   ci/softroce/run-vm.sh [options] SCRIPT      SCRIPT: a path under ci/softroce/in-vm/
#   ci/softroce/run-vm.sh --shell               an interactive shell on the serial console
#
# Options:
#   --results DIR     where the script's results land (default: target/softroce/results)
#   --bins DIR        the project's binaries, shared read-only at /mnt/bins (default: the
#                     newer of target/release and target/debug)
#   --timeout SECS    hard bound on the whole boot-run-poweroff (default: 900)
#   --smp N --mem MB  the VM's CPUs and memory (default: 2, 2048)
#   --net ARGS        QEMU netdev + device arguments (default: a user-mode NIC, no outside access)
#   --sync DIR        a directory shared read-write at /mnt/sync (two-VM mode)
#   --append ARGS     more kernel arguments
#   --nvme IMAGE      a q35 machine with a virtual IOMMU (intel-iommu, aw-bits=48) and QEMU's
#                     NVMe controller on a PCIe root port, backed by the raw file IMAGE
#                     through blkdebug, which fails reads of sector 264192 (129 MiB) with EIO (a media
#                     error: the controller answers 0x281); kernel argument intel_iommu=on.
#                     The VFIO backend drives that controller (docs/softroce.md).
#   --broker          with --nvme: a QEMU monitor socket and the fault broker
#                     (fault-broker.py) beside the VM; the guest asks it for faults through
#                     /mnt/results/broker (kernel argument nvmf_broker=)
# The VM's serial console goes to RESULTS/console.log. Exit status: the script's, or 1 when
# the VM did not finish (timeout, panic); QEMU is killed at the timeout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RESULTS=$VM_CACHE/results
BINS=""
TIMEOUT=900
SMP=2
MEM=2048
# the sector whose reads blkdebug fails (--nvme; the broker's media-error names it)
MEDIA_SECTOR=264192
NET="-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0,romfile="
SYNC=""
APPEND=""
NVME=""
BROKER=0
SCRIPT=""
SHELL_MODE=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --results) RESULTS=$2; shift 2 ;;
      --bins) BINS=$2; shift 2 ;;
      --timeout) TIMEOUT=$2; shift 2 ;;
      --smp) SMP=$2; shift 2 ;;
      --mem) MEM=$2; shift 2 ;;
      --net) NET=$2; shift 2 ;;
      --sync) SYNC=$2; shift 2 ;;
      --append) APPEND=$2; shift 2 ;;
      --nvme) NVME=$2; shift 2 ;;
      --broker) BROKER=1; shift ;;
      --shell) SHELL_MODE=1; shift ;;
      -h|--help) usage ;;
      -*) echo "run-vm.sh: unknown option $1" >&2; usage ;;
      *) SCRIPT=$1; shift ;;
    esac
  done
  if [ $SHELL_MODE = 0 ] && [ -z "$SCRIPT" ]; then usage; fi
}

# The binaries to share: --bins, else whichever of release/debug holds the newer
# nvmf-reference-target (the one a developer built last).
default_bins() {
  local best="" d
  for d in "$REPO_ROOT/target/release" "$REPO_ROOT/target/debug"; do
    [ -x "$d/nvmf-reference-target" ] || [ -x "$d/nvmf-conform" ] || continue
    if [ -z "$best" ] || [ "$d/nvmf-reference-target" -nt "$best/nvmf-reference-target" ]; then best=$d; fi
  done
  echo "${best:-$REPO_ROOT/target/debug}"
}

# The script's path as the VM sees it under the repo share (/mnt/repo).
script_in_repo() {
  local abs
  if [ -f "$SCRIPT" ]; then abs=$(cd "$(dirname "$SCRIPT")" && pwd)/$(basename "$SCRIPT")
  elif [ -f "$SOFTROCE_DIR/in-vm/$SCRIPT" ]; then abs=$SOFTROCE_DIR/in-vm/$SCRIPT
  else die "no such in-VM script: $SCRIPT"; fi
  case $abs in "$REPO_ROOT"/*) echo "${abs#"$REPO_ROOT"/}" ;; *) die "$SCRIPT is not inside the repository" ;; esac
}

# Adds a 9p share to the array SHARES: virtfs TAG DIR [readonly]
virtfs() {
  local ro=""
  [ "${3:-}" = readonly ] && ro=",readonly=on"
  SHARES+=(-virtfs "local,path=$2,mount_tag=$1,security_model=none,id=$1$ro")
}

main() {
  parse_args "$@"
  local img qemu kargs rc
  img=$(image_dir)
  [ -f "$img/stamp" ] || die "no VM image: run ci/softroce/build-image.sh first"
  ensure_qemu
  qemu=$(qemu_bin)
  [ -n "$BINS" ] || BINS=$(default_bins)
  mkdir -p "$BINS"
  BINS=$(cd "$BINS" && pwd)

  # the VM writes into a scratch directory; only a finished run's files are copied back
  scratch=$(mktemp -d "$VM_CACHE/run.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  kargs="console=ttyS0 quiet loglevel=4 panic=-1 $APPEND"
  [ $SHELL_MODE = 1 ] || kargs="$kargs nvmf_run=$(script_in_repo)"

  # --nvme: q35 + vIOMMU + the NVMe controller on a root port (raw file -> blkdebug -> raw)
  local machine=()
  if [ -n "$NVME" ]; then
    [ -f "$NVME" ] || die "--nvme $NVME: no such image file"
    local blkdebug='{"driver":"blkdebug","node-name":"dbg0","image":"file0","inject-error":[{"event":"none","iotype":"read","errno":5,"sector":'$MEDIA_SECTOR'}]}'
    machine=(-machine q35 -device intel-iommu,aw-bits=48
      -device pcie-root-port,id=rp1,chassis=1,slot=1,bus=pcie.0
      -blockdev "driver=file,node-name=file0,filename=$(cd "$(dirname "$NVME")" && pwd)/$(basename "$NVME")"
      -blockdev "$blkdebug" -blockdev driver=raw,node-name=raw0,file=dbg0
      -device nvme,id=nvme0,serial=nvmf-conform,drive=raw0,bus=rp1,share-rw=on)
    kargs="$kargs intel_iommu=on"
    if [ $BROKER = 1 ]; then
      machine+=(-monitor "unix:$scratch/monitor.sock,server=on,wait=off")
      kargs="$kargs nvmf_broker=/mnt/results/broker"
    fi
  fi

  local net
  SHARES=()
  virtfs repo "$REPO_ROOT" readonly
  virtfs bins "$BINS" readonly
  virtfs results "$scratch"
  [ -z "$SYNC" ] || virtfs sync "$(cd "$SYNC" && pwd)"
  read -ra net <<<"$NET"

  # -accel tcg with -cpu max: all of the host's features the emulator knows, no KVM
  local cmd=(env "$(qemu_env)" "$qemu" -L "$QEMU_ROOT/fw" -accel tcg -cpu max -smp "$SMP" -m "$MEM"
    -kernel "$img/vmlinuz" -initrd "$img/initramfs" -append "$kargs"
    "${machine[@]}" "${net[@]}" "${SHARES[@]}" -nographic -no-reboot)
  if [ $SHELL_MODE = 1 ]; then
    "${cmd[@]}"
    return
  fi

  log "booting (smp $SMP, timeout ${TIMEOUT}s): $SCRIPT"
  local t0=$SECONDS broker_pid=""
  if [ -n "$NVME" ] && [ $BROKER = 1 ]; then
    python3 "$SOFTROCE_DIR/fault-broker.py" "$scratch/broker" "$scratch/monitor.sock" "$MEDIA_SECTOR" \
      > "$scratch/broker.log" 2>&1 &
    broker_pid=$!
  fi
  set +e
  timeout --kill-after=10 "$TIMEOUT" "${cmd[@]}" < /dev/null > "$scratch/console.log" 2>&1
  rc=$?
  set -e
  [ -z "$broker_pid" ] || kill "$broker_pid" 2>/dev/null || true
  if [ $rc = 124 ] || [ $rc = 137 ]; then
    log "the VM did not finish within ${TIMEOUT}s: killed"
    rc=1
  elif [ -f "$scratch/rc" ]; then
    rc=$(cat "$scratch/rc")
  else
    log "the VM stopped without the script's exit code (QEMU exit $rc): see console.log"
    rc=1
  fi
  mkdir -p "$RESULTS"
  cp -a "$scratch"/. "$RESULTS"/
  log "VM done in $((SECONDS - t0)) s, script exit $rc; results in $RESULTS"
  return "$rc"
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here
main "$@"; exit $?
