#!/usr/bin/env bash
# The VFIO stage, in a VM booted with run-vm.sh --nvme (q35, intel-iommu, QEMU's NVMe
# controller behind blkdebug):
#   v  vfio-check   bind the NVMe controller to vfio-pci and drive it from userspace with
#                   nvmf-reference-target --vfio-check: bring-up, Identify, reads of LBA 0
#                   (success) and LBA 2048 (the blkdebug media error: 0x281 expected), and a
#                   write + read-back of LBA 100, whose bytes the host then finds in the
#                   controller's backing file.
# Skips, with the reason, when the machine has no NVMe controller or no IOMMU group.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The NVMe controller's PCI address (class 010802), or nothing.
nvme_bdf() {
  local d
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/class")" = 0x010802 ] && { basename "$d"; return; }
  done
}

# Binds BDF to vfio-pci (driver_override), whatever it had.
bind_vfio() {
  local bdf=$1 dev=/sys/bus/pci/devices/$1
  modprobe vfio-pci
  if [ -e "$dev/driver" ]; then echo "$bdf" > "$dev/driver/unbind"; fi
  echo vfio-pci > "$dev/driver_override"
  echo "$bdf" > /sys/bus/pci/drivers_probe
  [ "$(basename "$(readlink "$dev/driver")")" = vfio-pci ] || { echo "$bdf did not bind to vfio-pci"; return 1; }
}

stage_v() {
  local bdf out rc=0
  bdf=$(nvme_bdf)
  [ -n "$bdf" ] || skip "no NVMe controller on this machine (run-vm.sh --nvme adds QEMU's)"
  [ -e "/sys/bus/pci/devices/$bdf/iommu_group" ] || skip "$bdf is in no IOMMU group (boot with intel_iommu=on and -device intel-iommu)"
  echo "NVMe controller $bdf, IOMMU group $(basename "$(readlink "/sys/bus/pci/devices/$bdf/iommu_group")")"
  bind_vfio "$bdf"
  [ -x "$BINS/nvmf-reference-target" ] || skip "no nvmf-reference-target among the shared binaries"
  out=$("$BINS/nvmf-reference-target" --vfio-check "$bdf" --vfio-read 0 --vfio-read 2048 \
    --vfio-write-verify 100 --allow-destructive "$bdf" 2>&1) || rc=$?
  echo "$out" | tee "$RESULTS/vfio-check.out"
  # LBA 2048's read fails by design (the blkdebug rule): exit 1 with exactly that failure
  [ "$rc" = 1 ] || { echo "expected exit 1 (one failed read), got $rc"; return 1; }
  grep -q "model \"QEMU NVMe Ctrl\"" <<<"$out" || { echo "no Identify model line"; return 1; }
  grep -q "read nsid 1 lba 0: SCT0/SC0x00" <<<"$out" || { echo "LBA 0 did not read"; return 1; }
  grep -q "read nsid 1 lba 2048: SCT2/SC0x81" <<<"$out" || { echo "LBA 2048 did not fail with 0x281"; return 1; }
  grep -q "read back nsid 1 lba 100: SCT0/SC0x00 Successful Completion, data matches" <<<"$out" \
    || { echo "the written block did not read back"; return 1; }
  grep -q "1 read(s) failed$" <<<"$out" || { echo "unexpected failures"; return 1; }
}

main() {
  run_stage v-vfio-check stage_v
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here;
# run_strict (lib.sh) runs one function of this script in a new bash
case ${NVMF_STAGE_FUNC:-} in "") main; exit $? ;; *) strict_body; exit $? ;; esac
