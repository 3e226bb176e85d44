#!/usr/bin/env bash
# The VFIO stage, in a VM booted with run-vm.sh --nvme (q35, intel-iommu, QEMU's NVMe
# controller behind blkdebug):
#   v  vfio-check   bind the NVMe controller to vfio-pci and drive it from userspace with
#                   nvmf-reference-target --vfio-check: bring-up, Identify, reads of LBA 0
#                   (success) and LBA 2048 (the blkdebug media error: 0x281 expected), and a
#                   write + read-back of LBA 100, whose bytes the host then finds in the
#                   controller's backing file.
#   v  vfio-faults  real faults from the host's fault broker (run-vm.sh --broker): a read
#                   stalled on the backing store gets no completion while CSTS stays ready,
#                   and completes once the stall is lifted; an AER error on the root port
#                   fires VFIO's error eventfd and the reset controller completes no more;
#                   the driver makes the controller fatal (CQ unmapped); an unplug fires
#                   VFIO's request eventfd and the device goes once released.
# Skips, with the reason, when the machine has no NVMe controller, no IOMMU group or no broker.
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
  out=$(timeout 120 "$BINS/nvmf-reference-target" --vfio-check "$bdf" --vfio-read 0 --vfio-read 2048 \
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

stage_v_faults() {
  local bdf out rc=0 rc2 broker
  bdf=$(nvme_bdf)
  [ -n "$bdf" ] || skip "no NVMe controller on this machine"
  broker=$(karg broker "")
  [ -n "$broker" ] || skip "no fault broker (run-vm.sh --broker)"
  [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || bind_vfio "$bdf"
  # streamed to the console as it goes (a fault that hangs something shows where)
  set +o pipefail
  # stall, then the controller made fatal by the driver; a second bring-up clears it (CC.EN
  # 0 resets the controller), then the PCI error, which leaves the link reset
  NVMF_FAULT_BROKER=$broker timeout 120 "$BINS/nvmf-reference-target" --vfio-check "$bdf" \
    --vfio-fault stall --vfio-fault controller-fatal 2>&1 | tee "$RESULTS/vfio-faults.out"
  rc=${PIPESTATUS[0]}
  NVMF_FAULT_BROKER=$broker timeout 120 "$BINS/nvmf-reference-target" --vfio-check "$bdf" \
    --vfio-fault pci-error 2>&1 | tee -a "$RESULTS/vfio-faults.out"
  rc2=${PIPESTATUS[0]}
  [ "$rc2" = 0 ] || rc=$rc2
  # last: the controller is unplugged; once the check releases it, the removal finishes
  NVMF_FAULT_BROKER=$broker timeout 120 "$BINS/nvmf-reference-target" --vfio-check "$bdf" \
    --vfio-fault unplug 2>&1 | tee -a "$RESULTS/vfio-faults.out"
  rc2=${PIPESTATUS[0]}
  [ "$rc2" = 0 ] || rc=$rc2
  local i
  for i in $(seq 1 100); do [ -e "/sys/bus/pci/devices/$bdf" ] || break; sleep 0.1; done
  if [ -e "/sys/bus/pci/devices/$bdf" ]; then echo "$bdf still present 10 s after its release"; rc=1
  else echo "unplug: $bdf removed after the check released it"; fi
  set -o pipefail
  out=$(cat "$RESULTS/vfio-faults.out")
  grep -q "stall: read nsid 1 lba 8: a read: no completion within 2000 ms (CSTS 0x00000001: rdy=1 cfs=0)" <<<"$out" \
    || { echo "the stalled read did not stall with CSTS ready"; return 1; }
  grep -q "stall: the stalled read completed .* SCT0/SC0x00" <<<"$out" \
    || { echo "the stalled read did not complete after resume"; return 1; }
  grep -q "controller-fatal: a read on queue 2: controller fatal status" <<<"$out" \
    || { echo "the driver did not see the controller go fatal"; return 1; }
  grep -q "pci-error: VFIO error eventfd fired" <<<"$out" || { echo "no VFIO error eventfd"; return 1; }
  grep -q "unplug: VFIO request eventfd fired" <<<"$out" || { echo "no VFIO request eventfd"; return 1; }
  [ "$rc" = 0 ] || { echo "exit $rc"; return 1; }
}

main() {
  local failed=0
  run_stage v-vfio-check stage_v || failed=1
  run_stage v-vfio-faults stage_v_faults || failed=1
  return $failed
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here;
# run_strict (lib.sh) runs one function of this script in a new bash
case ${NVMF_STAGE_FUNC:-} in "") main; exit $? ;; *) strict_body; exit $? ;; esac
