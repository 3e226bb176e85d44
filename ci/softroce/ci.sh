#!/usr/bin/env bash
# The soft-RoCE CI stage (issue 6): real RDMA verbs through Linux's rdma_rxe inside a QEMU
# VM. Builds the VM image (cached), builds the project's binaries (and the plugins of stage
# p), boots once to run stages a, b, p, r, c, d (ci/softroce/in-vm/stages.sh), boots a second VM (q35 with a virtual IOMMU
# and QEMU's NVMe controller) for stage v (in-vm/vfio.sh: the VFIO backend's driver on a real
# controller), optionally stage e (two VMs), and writes
# reports/softroce/: junit.xml (one case per stage, skips with their reason, and stage a's
# contract cases as a suite of their own), fio.md (the reference target beside the kernel
# target), summary.json, and the raw results under vm/ (fio JSON, each stage's log, the
# console).
#
# Environment:
#   NVMF_SOFTROCE_TWONODE=1   also run stage e (two VMs; about 2.5 more minutes)
#   NVMF_SOFTROCE_BUILD=0     do not run cargo build (use the binaries already in target/)
#   NVMF_SOFTROCE_PROFILE=P   cargo profile of the binaries: release (default: the fio table
#                             compares the reference target as it is meant to run) or dev
#   NVMF_SOFTROCE_BINS=DIR    the binaries to share (default target/release, or target/debug
#                             with the dev profile)
#   NVMF_SOFTROCE_APPEND=...  more kernel arguments for both VMs: stages.sh reads
#                             nvmf_fio_runtime=, nvmf_fio_reps=, nvmf_stages=,
#                             nvmf_conform_filter=, nvmf_shard=,
#                             nvmf_blktests_kernel=; vfio.sh reads
#                             nvmf_vfio_only=ID,ID
#   NVMF_CONFORM_VM_CACHE, NVMF_CONFORM_VM_KVER   see ci/softroce/lib.sh
# Exit status: non-zero when a stage failed or the VM did not finish; skips do not fail.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REPORTS=$REPO_ROOT/reports/softroce
PROFILE=${NVMF_SOFTROCE_PROFILE:-release}
case $PROFILE in release) PROFILE_DIR=release ;; dev) PROFILE_DIR=debug ;; *) PROFILE_DIR=$PROFILE ;; esac
BINS=${NVMF_SOFTROCE_BINS:-$REPO_ROOT/target/$PROFILE_DIR}

# Host tools the image build needs beyond a base Debian system.
host_setup() {
  local need=() c
  for c in cpio python3 timeout; do command -v "$c" >/dev/null || need+=("$c"); done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt_lists_fresh
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]/timeout/coreutils}" >/dev/null
  fi
}

# "--features verbs" (one word a line) when the package in DIR declares that feature (the
# real-verbs fabric), nothing otherwise: binaries and the contract test get verbs when they can.
verbs_feature() {
  if grep -q '^verbs *=' "$REPO_ROOT/$1/Cargo.toml" 2>/dev/null; then printf '%s\n' --features verbs; fi
}

# Building with the verbs feature needs bindgen's libclang and rdma-core's headers.
verbs_build_deps() {
  local pkgs=(libclang-dev libibverbs-dev librdmacm-dev) need=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} (to build the verbs fabric)"
    apt_lists_fresh
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

build_binaries() {
  [ "${NVMF_SOFTROCE_BUILD:-1}" = 1 ] || return 0
  local pkg features=()
  for pkg in suites reference-target; do
    [ -z "$(verbs_feature "$pkg")" ] || features+=("$pkg/verbs")
  done
  # one invocation (with stage p's reference plugin): cargo unifies the features once, so
  # harness and reference-target are built once, not once for the binaries and again for
  # the plugin
  log "cargo build --profile $PROFILE -p suites -p reference-target -p nvmf-reference-plugin${features[*]:+ --features ${features[*]}}"
  (cd "$REPO_ROOT" && cargo build --locked --profile "$PROFILE" -p suites -p reference-target \
    -p nvmf-reference-plugin ${features[*]:+--features "${features[*]}"})
  # stage p: the C NIC shim over the reference plugin (fixtures/plugins/nic_shim.c)
  cc -shared -fPIC -std=c11 -O2 -Wall -Werror -I "$REPO_ROOT/include" -o "$BINS/libnic_shim.so" \
    "$REPO_ROOT/fixtures/plugins/nic_shim.c" -ldl
}

# The fabric_contract test binary (stage a), relative to BINS. When building: the debug
# build with the verbs fabric that .ci/run's verbs step already made (ci/verbs-args.sh: the
# same packages and features, so nothing is built again; a release build of the test would
# build every dev-dependency again, for a stage that runs in seconds), copied into BINS as
# fabric_contract-verbs. Otherwise the one there, or the newest one under BINS/deps.
contract_test_bin() {
  local path=""
  if [ "${NVMF_SOFTROCE_BUILD:-1}" = 1 ] && [ -n "$(verbs_feature harness)" ]; then
    # shellcheck source=ci/verbs-args.sh
    source "$REPO_ROOT/ci/verbs-args.sh"
    path=$(cd "$REPO_ROOT" && cargo test "${VERBS_CARGO[@]}" "${VERBS_TESTS[@]}" \
             --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "fabric_contract":
        print(m["executable"])') || true
    [ -n "$path" ] || return 0
    cp -f "$path" "$BINS/fabric_contract-verbs" && echo fabric_contract-verbs
    return 0
  fi
  if [ -x "$BINS/fabric_contract-verbs" ]; then echo fabric_contract-verbs; return 0; fi
  path=$(find "$BINS/deps" -maxdepth 1 -type f -perm -u+x -name 'fabric_contract-*' -printf '%T@ %p\n' 2>/dev/null |
           sort -n | tail -1 | cut -d' ' -f2-)
  case $path in "$BINS"/*) echo "${path#"$BINS"/}" ;; esac
}

# A check the host makes after the VM, reported as stage ID in DIR/stages: when stage AFTER
# passed, CMD... must succeed (else it fails with WHY); otherwise it skips.
host_check() {
  local dir=$1 after=$2 id=$3 why=$4 rc=0
  shift 4
  if [ "$(cat "$dir/stages/$after.status" 2>/dev/null)" != pass ]; then
    echo "skip: stage $after did not pass" > "$dir/stages/$id.status"
  elif "$@"; then
    echo pass > "$dir/stages/$id.status"
  else
    echo "fail: $why" > "$dir/stages/$id.status"; rc=1
  fi
  echo 0 > "$dir/stages/$id.seconds"
  return $rc
}

# Stage v: boots a q35 VM whose NVMe controller is backed by a fresh raw file, runs
# in-vm/vfio.sh (the userspace VFIO driver: bring-up, Identify, reads, the blkdebug media
# error, a write read back; the kernel initiator through rxe0 and the reference target
# serving that controller; then real faults through the fault broker: a stall and an AER
# error), then checks from the host that the written blocks are in the backing file (stages
# v-vfio-backing-store and v-vfio-initiator-backing-store).
vfio_stage() {
  local img rc=0 dir=$REPORTS/vfio
  img=$(mktemp "$VM_CACHE/nvme.XXXXXX.img")
  truncate -s 256M "$img"
  "$SOFTROCE_DIR/run-vm.sh" --nvme "$img" --broker --timeout 1500 --bins "$BINS" --results "$dir" \
    --append "${NVMF_SOFTROCE_APPEND:-}" vfio.sh || rc=1
  mkdir -p "$dir/stages"
  # nvmf-reference-target --vfio-write-verify 100 wrote harness::backend::vfio::check::pattern
  host_check "$dir" v-vfio-check v-vfio-backing-store \
    "block 100 of the controller's backing file does not hold the pattern written through VFIO" \
    python3 -c '
import sys
lba, block = 100, 512
want = bytes(((i ^ (lba * 0x9E37)) * 31) & 0xFF for i in range(block))
with open(sys.argv[1], "rb") as f:
    f.seek(lba * block)
    got = f.read(block)
sys.exit(0 if got == want else 1)' "$img" || rc=1
  # the kernel initiator wrote vfio-pattern.bin at 32 MiB through rxe, the reference target
  # and its VFIO backend: the same bytes must be in the controller's backing file
  host_check "$dir" v-vfio-initiator v-vfio-initiator-backing-store \
    "32..40 MiB of the controller's backing file do not hold what the kernel initiator wrote" \
    cmp -s -i 0:$((32 << 20)) -n $((8 << 20)) "$dir/vfio-pattern.bin" "$img" || rc=1
  # after the PCI error and the stall, 48..64 MiB hold each chunk's last acknowledged write
  host_check "$dir" v-vfio-recovery v-vfio-recovery-backing-store \
    "48..64 MiB of the backing file do not hold the last acknowledged writes" \
    cmp -s -i 0:$((48 << 20)) -n $((16 << 20)) "$dir/vfio-recovery.bin" "$img" || rc=1
  rm -f "$img" "$dir/vfio-pattern.bin" "$dir/vfio-recovery.bin"
  return $rc
}

main() {
  local t0=$SECONDS rc=0 t
  host_setup
  t=$SECONDS; "$SOFTROCE_DIR/build-image.sh" >/dev/null; log "image ready in $((SECONDS - t)) s"
  if [ "${NVMF_SOFTROCE_BUILD:-1}" = 1 ] && [ -n "$(verbs_feature harness)" ]; then verbs_build_deps; fi
  t=$SECONDS; ensure_qemu; build_binaries; log "qemu and binaries ready in $((SECONDS - t)) s"
  BINS=$(cd "$BINS" && pwd)
  rm -rf "$REPORTS"
  mkdir -p "$REPORTS"

  # stages a, b, r, c, d in one boot; the VM's own bound is well inside the CI stage's 20 minutes
  t=$SECONDS
  local contract
  contract=$(contract_test_bin)
  [ -n "$contract" ] || log "no fabric_contract test binary under $BINS: stage a will skip"
  # stage s soaks from the number of commits, as ci/soak.sh does: each commit explores
  # another part of the space (NVMF_SOFTROCE_APPEND=nvmf_soak_seed=N replays one)
  local soak_seed
  soak_seed=$(git -C "$REPO_ROOT" rev-list --count HEAD 2>/dev/null || echo 1)
  # stages b, p and r run half of their offload cases, and stage t half of its blktests
  # selection, the halves alternating by commit: two consecutive commits run everything,
  # and the VM stays near 20 minutes under TCG (NVMF_SOFTROCE_APPEND=nvmf_shard= runs all)
  local shard=$((soak_seed % 2 + 1))/2
  "$SOFTROCE_DIR/run-vm.sh" --timeout 2100 --bins "$BINS" --results "$REPORTS/vm" \
    --append "${contract:+nvmf_contract_bin=$contract} nvmf_soak_seed=$soak_seed nvmf_shard=$shard ${NVMF_SOFTROCE_APPEND:-}" stages.sh || rc=1
  log "single-VM stages: $((SECONDS - t)) s"

  # stage v: QEMU's NVMe controller driven through VFIO (a q35 VM with a virtual IOMMU)
  t=$SECONDS
  vfio_stage || rc=1
  log "stage v (VFIO): $((SECONDS - t)) s"

  if [ "${NVMF_SOFTROCE_TWONODE:-0}" = 1 ]; then
    t=$SECONDS
    "$SOFTROCE_DIR/twonode.sh" --results "$REPORTS/twonode" --bins "$BINS" || rc=1
    log "stage e (two VMs): $((SECONDS - t)) s"
  fi

  python3 "$SOFTROCE_DIR/report.py" "$REPORTS" "$REPORTS" || rc=1
  if command -v xmllint >/dev/null; then
    xmllint --noout --schema "$REPO_ROOT/fixtures/schemas/junit-10.xsd" "$REPORTS/junit.xml" || rc=1
  fi
  [ ! -f "$REPORTS/fio.md" ] || cat "$REPORTS/fio.md"
  log "soft-RoCE stage $( [ $rc = 0 ] && echo passed || echo FAILED ) in $((SECONDS - t0)) s; reports in ${REPORTS#"$REPO_ROOT"/}"
  return $rc
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here
main "$@"; exit $?
