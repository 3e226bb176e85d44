#!/usr/bin/env bash
# The VFIO stage, in a VM booted with run-vm.sh --nvme (q35, intel-iommu, QEMU's NVMe
# controller behind blkdebug):
#   v  vfio-check   bind the NVMe controller to vfio-pci and drive it from userspace with
#                   nvmf-reference-target --vfio-check: bring-up, Identify, reads of LBA 0
#                   (success) and LBA 264192 (the blkdebug media error: 0x281 expected), and a
#                   write + read-back of LBA 100, whose bytes the host then finds in the
#                   controller's backing file.
#   v  vfio-initiator  the Linux kernel initiator -> rxe0 -> nvmf-reference-target whose
#                   subsystem is served from that controller ([subsystem.backend] kind =
#                   "vfio"): 8 MiB written at 32 MiB with dd and read back, fio's crc32c
#                   verify over 16..32 MiB, the blkdebug media error on LBA 264192 reaching
#                   the host as an I/O error; the engine's counters show the I/O offloaded.
#                   The host then finds the 8 MiB in the backing file (stage
#                   v-vfio-initiator-backing-store).
#   v  vfio-catalog  nvmf-conform's offload catalog, areas datapath, pci-error, timeout,
#                   recovery and backend-error, with every backend controller a queue pair of that controller
#                   (--backend vfio:PCI; in recovery the case's reference target opens it)
#                   and its faults through the broker; first, so that what the stages
#                   after it write is what the host finds; the reports in
#                   conform-vfio/ (JUnit, summary, results), one line per area with its
#                   pass/skip counts. Fails on any failed or errored case, or when no case
#                   of an area passed.
#   v  vfio-two-host  the same areas in two-host mode: nvmf-reference-target --control on
#                   127.0.0.1 (rxe0) lends the controller (--backend vfio:PCI) with the
#                   broker's faults, and nvmf-conform run --connect drives it from another
#                   process over the lab secret's TLS channel, naming the same controller;
#                   the reports in conform-vfio-two-host/, one line per area, and the cases
#                   whose verdict differs from vfio-catalog's listed. Fails on any failed or
#                   errored case, or when no case of an area passed.
#   v  vfio-recovery  integrity under real faults on the reference target's VFIO backend:
#                   the kernel initiator writes and reads back 64 chunks of 256 KiB (each
#                   write's content recorded) while the fault broker injects a PCI error
#                   (the target resets the controller and brings the namespace back) and
#                   a stalled read (the engine times it out, the namespace waits offline
#                   until the resumed read finished, then comes back); at the end every
#                   chunk must hold its last acknowledged write: lost 0, corrupt 0. The
#                   host then finds the same 16 MiB in the backing file (stage
#                   v-vfio-recovery-backing-store).
#   v  vfio-fio     fio 4 KiB randread/randwrite at QD 1 and 32 on the same controller served
#                   two ways, in turn, nvmf_fio_reps times (default 3): the reference target
#                   with the VFIO backend, and the kernel's nvmet-rdma with the controller
#                   bound to the nvme driver as a block-device namespace. JSON in fio/vfio-*.
#   v  lab-inject   a lab's faults on a real SSD from its host (nvmf-conform inject): the
#                   refusals first (no consent; a device no longer bound to vfio-pci), then
#                   each action, safest first (bus-master-off, memory-off, reset, bus-reset,
#                   remove), held 1 s and undone: the JSON report must show it took effect
#                   (where sysfs can show it: not for the resets) and was undone, the device bound to vfio-pci again, and the controller
#                   then reads block 100 through VFIO. Reports in lab-inject/ACTION.json.
#   v  vfio-faults  real faults from the host's fault broker (run-vm.sh --broker): a read
#                   stalled on the backing store gets no completion while CSTS stays ready,
#                   and completes once the stall is lifted; an AER error on the root port
#                   fires VFIO's error eventfd and the reset controller completes no more;
#                   the driver makes the controller fatal (CQ unmapped); an unplug fires
#                   VFIO's request eventfd and the device goes once released; a replug
#                   brings it back, reading block 100 as written before the unplug.
# Skips, with the reason, when the machine has no NVMe controller, no IOMMU group or no broker.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# the catalog's bounds are scaled for TCG, as in stages.sh
TIMEOUT_SCALE=$(karg timeout_scale 8)
# the block run-vm.sh's blkdebug rule fails reads of (129 MiB into the 256 MiB namespace:
# clear of every region the stages write)
MEDIA_LBA=264192
# stage v-vfio-two-host's control channel (TCP)
VFIO_CONTROL_PORT=4802

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
  out=$(timeout 120 "$BINS/nvmf-reference-target" --vfio-check "$bdf" --vfio-read 0 --vfio-read "$MEDIA_LBA" \
    --vfio-write-verify 100 --allow-destructive "$bdf" 2>&1) || rc=$?
  echo "$out" | tee "$RESULTS/vfio-check.out"
  # LBA $MEDIA_LBA's read fails by design (the blkdebug rule): exit 1 with exactly that failure
  [ "$rc" = 1 ] || { echo "expected exit 1 (one failed read), got $rc"; return 1; }
  grep -q "model \"QEMU NVMe Ctrl\"" <<<"$out" || { echo "no Identify model line"; return 1; }
  grep -q "read nsid 1 lba 0: SCT0/SC0x00" <<<"$out" || { echo "LBA 0 did not read"; return 1; }
  grep -q "read nsid 1 lba $MEDIA_LBA: SCT2/SC0x81" <<<"$out" || { echo "LBA $MEDIA_LBA did not fail with 0x281"; return 1; }
  grep -q "read back nsid 1 lba 100: SCT0/SC0x00 Successful Completion, data matches" <<<"$out" \
    || { echo "the written block did not read back"; return 1; }
  grep -q "1 read(s) failed$" <<<"$out" || { echo "unexpected failures"; return 1; }
}

IP=10.0.2.15
VFIO_PORT=4421
VFIO_NQN=nqn.2026-11.io.nvmf-conform:vfio

# Starts nvmf-reference-target on CONFIG (consent given for the controller BDF), its
# output appended to LOG at --log-level LEVEL, and waits (at most 60 s) until its discovery
# controller answers; sets TARGET_PID and TARGET_NQN.
vfio_target_start() {
  local config=$1 bdf=$2 log=$3 level=$4 n=0
  "$BINS/nvmf-reference-target" --config "$config" --fabric verbs --device rxe0 \
    --allow-destructive "$bdf" --log-level "$level" --duration 900 >> "$log" 2>&1 &
  TARGET_PID=$!
  until TARGET_NQN=$(discover_nqn "$IP" "$VFIO_PORT" 2>/dev/null) && [ -n "$TARGET_NQN" ]; do
    n=$((n + 1))
    kill -0 "$TARGET_PID" 2>/dev/null || { tail -20 "$log"; return 1; }
    [ $n -lt 60 ] || { echo "the reference target did not answer discovery in 60 s"; kill "$TARGET_PID"; return 1; }
    sleep 1
  done
}

# Stops what vfio_target_start started: SIGINT (it then prints its counters), at most 30 s.
vfio_target_stop() {
  local n
  kill -INT "$TARGET_PID" 2>/dev/null || true
  for n in $(seq 1 150); do kill -0 "$TARGET_PID" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$TARGET_PID" 2>/dev/null; then
    echo "the target did not stop within 30 s of SIGINT"
    kill -9 "$TARGET_PID"; wait "$TARGET_PID" 2>/dev/null || true
    return 1
  fi
  wait "$TARGET_PID" 2>/dev/null || true
}

stage_v_initiator() {
  local bdf nqn dev rc=0
  bdf=$(nvme_bdf)
  [ -n "$bdf" ] || skip "no NVMe controller on this machine"
  [ -x "$BINS/nvmf-reference-target" ] || skip "no nvmf-reference-target among the shared binaries"
  offers_verbs "$BINS/nvmf-reference-target" || skip "nvmf-reference-target has no --fabric verbs in this build"
  [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || bind_vfio "$bdf"
  rdma link show rxe0/1 > /dev/null 2>&1 || setup_rxe "$IP"
  setup_host_identity
  cat > /tmp/vfio.toml <<TOML
profile = "full"

[[port]]
addr = "$IP:$VFIO_PORT"
subsystem = "$VFIO_NQN"

[[subsystem]]
nqn = "$VFIO_NQN"
allow_any_host = true
staging_buf = "4MiB"
queue_depth = 128

[subsystem.backend]
kind = "vfio"
pci = "$bdf"
TOML
  vfio_target_start /tmp/vfio.toml "$bdf" "$RESULTS/vfio-target.log" info || return 1
  nqn=$TARGET_NQN
  dev=$(nvme_connect "$IP" "$VFIO_PORT" "$nqn") || { vfio_target_stop; cat "$RESULTS/vfio-target.log"; return 1; }
  nvme list
  # 8 MiB at 32 MiB, clear of LBA $MEDIA_LBA (129 MiB), whose reads blkdebug fails
  dd if=/dev/urandom of="$RESULTS/vfio-pattern.bin" bs=1M count=8 status=none
  timeout 120 dd if="$RESULTS/vfio-pattern.bin" of="$dev" bs=1M seek=32 count=8 oflag=direct conv=fsync status=none || rc=1
  timeout 120 dd if="$dev" of=/tmp/vfio-readback bs=1M skip=32 count=8 iflag=direct status=none || rc=1
  if [ $rc = 0 ] && cmp "$RESULTS/vfio-pattern.bin" /tmp/vfio-readback; then
    say "dd: 8 MiB written at 32 MiB, read back and compared on $dev: OK"
  else
    echo "dd write / read-back over the VFIO backend failed"; rc=1
  fi
  if timeout 300 fio --name=verify --filename="$dev" --rw=randwrite --bs=4k --size=16M --offset=16M \
      --ioengine=libaio --iodepth=16 --direct=1 --verify=crc32c --do_verify=1 \
      --verify_fatal=1 --output-format=terse > "$RESULTS/vfio-fio-verify.out"; then
    say "fio: 16 MiB of random 4 KiB writes verified with crc32c on $dev: OK"
  else
    echo "fio verify over the VFIO backend failed"; rc=1
  fi
  # 1 MiB as one command: above QEMU's controller's MDTS (512 KiB), which the target splits
  if passthru_io "$dev" $((1024 * 1024)); then :; else
    echo "nvme-cli passthrough of 1 MiB over the VFIO backend failed"; rc=1
  fi
  # the controller's media error (blkdebug: reads of sector $MEDIA_LBA) reaches the host as EIO
  if timeout 60 dd if="$dev" of=/dev/null bs=512 skip="$MEDIA_LBA" count=1 iflag=direct status=none 2> /tmp/vfio-eio; then
    echo "a read of LBA $MEDIA_LBA succeeded: the media error did not reach the host"; rc=1
  else
    say "LBA $MEDIA_LBA (media error on the controller): $(head -1 /tmp/vfio-eio)"
  fi
  nvme disconnect -n "$nqn" || rc=1
  vfio_target_stop || rc=1
  grep -E "counters:|real-controller|subsystem-ready" "$RESULTS/vfio-target.log" || true
  # the offload engine, not software, served the I/O: offloaded writes of the 8 MiB at least
  local writes
  writes=$(offloaded_write_blocks "$RESULTS/vfio-target.log")
  [ -n "$writes" ] && [ "$writes" -ge 16384 ] || { echo "offloaded write blocks: '${writes}', expected at least 16384 (8 MiB)"; rc=1; }
  return $rc
}

# The blocks of namespace 1 the engine wrote offloaded, from the counters line of target log $1.
offloaded_write_blocks() {
  sed -n 's/^counters: .* nsid 1: offloaded reads [0-9]* ([0-9]* blocks), writes [0-9]* (\([0-9]*\) blocks).*/\1/p' "$1"
}

# Asks the host's fault broker for FAULT and prints its answer (bounded: 30 s).
broker_fault() {
  local fault=$1 dir name i
  dir=$(karg broker "")
  name="sh-$fault-$(date +%s%N)"
  mkdir -p "$dir/requests"
  echo "$fault" > "$dir/requests/.$name"
  mv "$dir/requests/.$name" "$dir/requests/$name"
  for i in $(seq 1 300); do
    [ -f "$dir/acks/$name" ] && { say "broker: $fault: $(cat "$dir/acks/$name")"; return 0; }
    sleep 0.1
  done
  echo "broker: no answer to $fault within 30 s"; return 1
}

# Waits (at most $2 s) for a line matching $1 in the target's log.
wait_log() {
  local i
  for i in $(seq 1 $(($2 * 5))); do
    grep -q "$1" "$RESULTS/vfio-recovery-target.log" && return 0
    sleep 0.2
  done
  echo "no '$1' in the target's log within $2 s"; return 1
}

CHUNKS=64                # chunks of 256 KiB at 48..64 MiB of the namespace
CHUNK_AT=192             # 48 MiB / 256 KiB
declare -a ACKED         # per chunk: the sha256 of its last acknowledged write
declare -a TRIED         # per chunk: the sha256 of every write tried, space separated
declare -a PENDING       # per chunk: 1 when its last write was not acknowledged
WRITES=0; WRITE_ERRORS=0; READS=0; READ_ERRORS=0; READ_BAD=0

# Writes fresh random content to chunk $1; records what was tried and what was acknowledged.
write_chunk() {
  local c=$1 sum
  head -c 262144 /dev/urandom > /tmp/chunk
  sum=$(sha256sum < /tmp/chunk | cut -c1-64)
  TRIED[c]="${TRIED[c]:-} $sum"
  WRITES=$((WRITES + 1))
  if timeout 60 dd if=/tmp/chunk of="$DEV" bs=256K seek=$((CHUNK_AT + c)) count=1 oflag=direct \
      conv=fsync status=none 2>/dev/null; then
    ACKED[c]=$sum; PENDING[c]=0; cp /tmp/chunk "/tmp/acked.$c"
  else
    PENDING[c]=1; WRITE_ERRORS=$((WRITE_ERRORS + 1))
  fi
}

# Reads chunk $1 back; when its last write was acknowledged, what comes back must be it.
read_chunk() {
  local c=$1 sum
  READS=$((READS + 1))
  if ! timeout 60 dd if="$DEV" of=/tmp/back bs=256K skip=$((CHUNK_AT + c)) count=1 iflag=direct \
      status=none 2>/dev/null; then
    READ_ERRORS=$((READ_ERRORS + 1)); return 0
  fi
  sum=$(sha256sum < /tmp/back | cut -c1-64)
  if [ "${PENDING[c]}" = 0 ] && [ "$sum" != "${ACKED[c]}" ]; then
    echo "read of chunk $c: not its last acknowledged write"; READ_BAD=$((READ_BAD + 1))
  fi
}

# N random operations: a write, then a read of the same chunk.
ops() {
  local i c
  for i in $(seq 1 "$1"); do
    c=$((RANDOM % CHUNKS)); write_chunk "$c"; read_chunk "$c"
  done
}

stage_v_recovery() {
  local bdf nqn broker c sum lost=0 corrupt=0 rc=0 tries
  bdf=$(nvme_bdf)
  [ -n "$bdf" ] || skip "no NVMe controller on this machine"
  broker=$(karg broker "")
  [ -n "$broker" ] || skip "no fault broker (run-vm.sh --broker)"
  offers_verbs "$BINS/nvmf-reference-target" || skip "nvmf-reference-target has no --fabric verbs in this build"
  [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || bind_vfio "$bdf"
  rdma link show rxe0/1 > /dev/null 2>&1 || { setup_rxe "$IP"; setup_host_identity; }
  # the engine's timeout is 2 s, and the MDTS is the offload's max_io_sz (128 KiB, profile
  # full) so that the host's 256 KiB chunks reach the device as offloaded commands: this stage
  # is the offload's recovery (larger commands would be software's, with its own 10 s bound)
  sed 's/^queue_depth = 128$/queue_depth = 128\ncmd_timeout_ms = 2000\nmdts = "128KiB"/' /tmp/vfio.toml > /tmp/vfio-recovery.toml
  grep -q "cmd_timeout_ms = 2000" /tmp/vfio-recovery.toml && grep -q 'mdts = "128KiB"' /tmp/vfio-recovery.toml
  vfio_target_start /tmp/vfio-recovery.toml "$bdf" "$RESULTS/vfio-recovery-target.log" info || return 1
  nqn=$TARGET_NQN
  DEV=$(nvme_connect "$IP" "$VFIO_PORT" "$nqn") || { vfio_target_stop; return 1; }
  for c in $(seq 0 $((CHUNKS - 1))); do write_chunk "$c"; done
  ops 20
  say "before faults: $WRITES writes ($WRITE_ERRORS failed), $READS reads ($READ_ERRORS failed)"
  # a PCI error: the target resets the controller and brings the namespace back
  broker_fault pci-error || rc=1
  ops 10
  wait_log "ctrl-recovered" 60 || rc=1
  ops 20
  say "after the PCI error: $WRITES writes ($WRITE_ERRORS failed), $READS reads ($READ_ERRORS failed)"
  # a stalled read: the engine times it out (2 s), the namespace waits offline until the
  # controller finished it, then a new queue pair takes over
  broker_fault stall || rc=1
  read_chunk 5
  wait_log "ctrl-quarantined" 30 || rc=1
  ops 3
  broker_fault resume || rc=1
  wait_log "ctrl-recreated" 60 || rc=1
  ops 20
  say "after the stall: $WRITES writes ($WRITE_ERRORS failed), $READS reads ($READ_ERRORS failed)"
  # the media error is still the controller's: reads of LBA $MEDIA_LBA fail, others do not
  if timeout 60 dd if="$DEV" of=/dev/null bs=512 skip="$MEDIA_LBA" count=1 iflag=direct status=none 2>/dev/null; then
    echo "LBA $MEDIA_LBA read without its media error"; rc=1
  fi
  # every chunk ends with an acknowledged write, then each must read back as it
  for c in $(seq 0 $((CHUNKS - 1))); do
    tries=0
    while [ "${PENDING[c]}" = 1 ] && [ $tries -lt 5 ]; do write_chunk "$c"; tries=$((tries + 1)); done
  done
  : > "$RESULTS/vfio-recovery.bin"
  for c in $(seq 0 $((CHUNKS - 1))); do
    if [ "${PENDING[c]}" = 1 ]; then echo "chunk $c: no write acknowledged at the end"; rc=1; continue; fi
    timeout 60 dd if="$DEV" of=/tmp/back bs=256K skip=$((CHUNK_AT + c)) count=1 iflag=direct status=none || { echo "chunk $c: final read failed"; rc=1; continue; }
    sum=$(sha256sum < /tmp/back | cut -c1-64)
    if [ "$sum" = "${ACKED[c]}" ]; then :
    elif grep -qw "$sum" <<<"${TRIED[c]}"; then lost=$((lost + 1)); echo "chunk $c: an older write (lost)"
    else corrupt=$((corrupt + 1)); echo "chunk $c: nothing ever written there (corrupt)"
    fi
    cat "/tmp/acked.$c" >> "$RESULTS/vfio-recovery.bin"
  done
  nvme disconnect -n "$nqn" || rc=1
  vfio_target_stop || rc=1
  grep -E "counters:|real-controller|ctrl-|offload-event" "$RESULTS/vfio-recovery-target.log" | grep -v "ctrl-created\|ctrl-teardown" || true
  echo "integrity: writes $WRITES (failed $WRITE_ERRORS), reads $READS (failed $READ_ERRORS, wrong data $READ_BAD), lost $lost, corrupt $corrupt" \
    | tee "$RESULTS/vfio-recovery.counts"
  # the offload served the chunks: the counters start again with each re-created controller,
  # and the last one took the 20 writes after the stall at least (512 blocks each)
  local blocks
  blocks=$(offloaded_write_blocks "$RESULTS/vfio-recovery-target.log")
  [ -n "$blocks" ] && [ "$blocks" -ge $((20 * 512)) ] \
    || { echo "offloaded write blocks: '${blocks}', expected at least $((20 * 512)) (20 chunks of 256 KiB)"; rc=1; }
  [ "$lost" = 0 ] && [ "$corrupt" = 0 ] && [ "$READ_BAD" = 0 ] || rc=1
  return $rc
}

KERNEL_NQN=nqn.2026-11.io.nvmf-conform:vfio-kernel
KERNEL_PORT=4420

# Binds BDF to the nvme driver and prints its namespace's block device.
bind_nvme() {
  local bdf=$1 dev=/sys/bus/pci/devices/$1 n ns
  modprobe nvme
  if [ -e "$dev/driver" ]; then echo "$bdf" > "$dev/driver/unbind"; fi
  echo nvme > "$dev/driver_override"
  echo "$bdf" > /sys/bus/pci/drivers_probe
  for n in $(seq 1 100); do
    for ns in "$dev"/nvme/nvme*/nvme*n1; do
      [ -e "$ns" ] && [ -b "/dev/${ns##*/}" ] && { echo "/dev/${ns##*/}"; return 0; }
    done
    sleep 0.1
  done
  echo "$bdf: no namespace block device 10 s after binding to nvme" >&2; return 1
}

# One fio job on DEV, JSON into fio/vfio-LABEL-RW-qdQD-rREP.json: 4 KiB random I/O over
# 64..128 MiB (clear of the blocks the other stages check on the host and of LBA $MEDIA_LBA's
# media error), time-based.
vfio_fio_job() {
  local label=$1 dev=$2 rw=$3 qd=$4 rep=$5 runtime=$6
  mkdir -p "$RESULTS/fio"
  timeout $((runtime + 60)) fio --name="$rw-qd$qd" --filename="$dev" --rw="$rw" --bs=4k --iodepth="$qd" \
    --ioengine=libaio --direct=1 --offset=64M --size=64M --time_based --runtime="$runtime" \
    --ramp_time=1 --norandommap --randrepeat=0 --output-format=json \
    --output="$RESULTS/fio/vfio-$label-$rw-qd$qd-r$rep.json" > /dev/null || return 1
  say "fio $label $rw qd$qd rep $rep done"
}

# The four jobs against DEV.
vfio_fio_jobs() {
  local label=$1 dev=$2 rep=$3 runtime=$4 rc=0
  vfio_fio_job "$label" "$dev" randread 1 "$rep" "$runtime" || rc=1
  vfio_fio_job "$label" "$dev" randread 32 "$rep" "$runtime" || rc=1
  vfio_fio_job "$label" "$dev" randwrite 1 "$rep" "$runtime" || rc=1
  vfio_fio_job "$label" "$dev" randwrite 32 "$rep" "$runtime" || rc=1
  return $rc
}

stage_v_fio() {
  local bdf reps runtime rep n nqn dev local_dev rc=0
  bdf=$(nvme_bdf)
  [ -n "$bdf" ] || skip "no NVMe controller on this machine"
  offers_verbs "$BINS/nvmf-reference-target" || skip "nvmf-reference-target has no --fabric verbs in this build"
  reps=$(karg fio_reps 3)
  runtime=$(karg vfio_fio_runtime 5)
  rdma link show rxe0/1 > /dev/null 2>&1 || { setup_rxe "$IP"; setup_host_identity; }
  {
    echo "kernel=$(uname -r)"
    echo "cpus=$(nproc)"
    echo "fio=$(fio --version)"
    echo "fio_runtime=$runtime"
    echo "fio_reps=$reps"
  } > "$RESULTS/meta.txt"
  for rep in $(seq 1 "$reps"); do
    # the reference target, its VFIO backend on the controller
    [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || bind_vfio "$bdf"
    vfio_target_start /tmp/vfio.toml "$bdf" "$RESULTS/vfio-fio-target.log" warn || return 1
    nqn=$TARGET_NQN
    dev=$(nvme_connect "$IP" "$VFIO_PORT" "$nqn") || { vfio_target_stop; return 1; }
    vfio_fio_jobs reference "$dev" "$rep" "$runtime" || { echo "fio reference rep $rep failed"; rc=1; }
    nvme disconnect -n "$nqn" > /dev/null || rc=1
    vfio_target_stop || rc=1
    # the kernel's nvmet-rdma, the controller bound to nvme as its namespace's block device
    local_dev=$(bind_nvme "$bdf") || return 1
    kernel_target_start "$KERNEL_NQN" "$local_dev" "$IP" "$KERNEL_PORT"
    dev=$(nvme_connect "$IP" "$KERNEL_PORT" "$KERNEL_NQN") || { kernel_target_stop "$KERNEL_NQN"; return 1; }
    vfio_fio_jobs kernel "$dev" "$rep" "$runtime" || { echo "fio kernel rep $rep failed"; rc=1; }
    nvme disconnect -n "$KERNEL_NQN" > /dev/null || rc=1
    kernel_target_stop "$KERNEL_NQN"
  done
  bind_vfio "$bdf"
  n=$(find "$RESULTS/fio" -name 'vfio-*.json' | wc -l)
  [ "$n" = $((8 * reps)) ] || { echo "$n fio results, expected $((8 * reps))"; rc=1; }
  return $rc
}

stage_v_catalog() {
  local bdf broker rc=0 area
  bdf=$(nvme_bdf)
  [ -n "$bdf" ] || skip "no NVMe controller on this machine"
  [ -x "$BINS/nvmf-conform" ] || skip "no nvmf-conform in the shared binaries"
  offers_verbs "$BINS/nvmf-conform" run || skip "nvmf-conform has no --fabric verbs in this build"
  rdma link show rxe0/1 > /dev/null 2>&1 || { setup_rxe "$IP"; setup_host_identity; }
  [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || bind_vfio "$bdf"
  broker=$(karg broker "")
  cd /mnt/repo
  NVMF_FAULT_BROKER=$broker timeout 900 "$BINS/nvmf-conform" run --fabric verbs --device rxe0 \
    --backend "vfio:$bdf" --allow-destructive "$bdf" \
    --filter datapath --filter pci-error --filter timeout --filter recovery --filter backend-error \
    --timeout-scale "$TIMEOUT_SCALE" --report-dir /tmp/conform-vfio || rc=$?
  cp -r /tmp/conform-vfio "$RESULTS/conform-vfio"
  [ -f /tmp/conform-vfio/junit.xml ] || { echo "no JUnit report"; return 1; }
  # per area: passed / skipped / failed, from the JUnit report (the VM has no python)
  area_counts /tmp/conform-vfio/junit.xml "vfio catalog" || rc=1
  return "$rc"
}

# Prints "CASE VERDICT" for every case of a JUnit report (pass, skip, fail), sorted.
junit_verdicts() {
  grep -o '<testcase [^>]*name="[^"]*"\|<skipped\|<failure\|<error\|</testcase>\|/>' "$1" | awk '
    /^<testcase / { if (name != "") print name, v; match($0, /name="[^"]*"/)
                    name = substr($0, RSTART + 6, RLENGTH - 7); v = "pass"; next }
    /^<skipped/ { v = "skip" } /^<failure|^<error/ { v = "fail" }
    END { if (name != "") print name, v }' | sort
}

# Per area of a JUnit report: passed / skipped / failed; fails on a failed case, or on an
# area where none passed.
area_counts() {
  local junit=$1 label=$2 area rc=0
  for area in datapath pci-error timeout recovery backend-error; do
    grep -o '<testsuite [^>]*name="[^"]*"\|</testsuite>\|<testcase \|<skipped\|<failure\|<error' \
      "$junit" | awk -v area="$area" -v label="$label" '
        /^<testsuite / { on = index($0, "name=\"" area "\"") > 0; next }
        /^<\/testsuite>/ { on = 0 }
        on && /^<testcase / { n++ }
        on && /^<skipped/ { s++ }
        on && /^<failure|^<error/ { b++ }
        END {
          p = n - s - b
          printf "%s %s: %d passed, %d skipped, %d failed or errored\n", label, area, p, s, b
          exit (p > 0 && b == 0) ? 0 : 1
        }' || rc=1
  done
  return "$rc"
}

stage_v_two_host() {
  local bdf broker rc=0
  bdf=$(nvme_bdf)
  [ -n "$bdf" ] || skip "no NVMe controller on this machine"
  [ -x "$BINS/nvmf-conform" ] || skip "no nvmf-conform in the shared binaries"
  offers_verbs "$BINS/nvmf-conform" run || skip "nvmf-conform has no --fabric verbs in this build"
  offers_verbs "$BINS/nvmf-reference-target" || skip "nvmf-reference-target has no --fabric verbs in this build"
  rdma link show rxe0/1 > /dev/null 2>&1 || { setup_rxe "$IP"; setup_host_identity; }
  [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || bind_vfio "$bdf"
  broker=$(karg broker "")
  cd /mnt/repo
  # the target host lends the controller and asks its own broker for the faults; the
  # runner names the same controller and reaches nothing of it but through the channel
  export NVMF_FAULT_BROKER=$broker
  control_target_start "127.0.0.1:$VFIO_CONTROL_PORT" \
    "$RESULTS/vfio-two-host-target.log" --backend "vfio:$bdf" --allow-destructive "$bdf"
  env -u NVMF_FAULT_BROKER timeout 900 "$BINS/nvmf-conform" run --fabric verbs --device rxe0 \
    --connect "127.0.0.1:$VFIO_CONTROL_PORT" --control-secret "$LAB_SECRET" \
    --backend "vfio:$bdf" --allow-destructive "$bdf" \
    --filter datapath --filter pci-error --filter timeout --filter recovery --filter backend-error \
    --timeout-scale "$TIMEOUT_SCALE" --report-dir /tmp/conform-vfio-two-host || rc=$?
  control_target_stop
  cp -r /tmp/conform-vfio-two-host "$RESULTS/conform-vfio-two-host"
  [ -f /tmp/conform-vfio-two-host/junit.xml ] || { echo "no JUnit report"; return 1; }
  area_counts /tmp/conform-vfio-two-host/junit.xml "vfio two-host" || rc=1
  # beside the one-process run of the same areas, when vfio-catalog ran in this boot
  if [ -f /tmp/conform-vfio/junit.xml ]; then
    junit_verdicts /tmp/conform-vfio/junit.xml > /tmp/verdicts-one.txt
    junit_verdicts /tmp/conform-vfio-two-host/junit.xml > /tmp/verdicts-two.txt
    echo "verdicts that differ from vfio-catalog's (< one process, > two hosts):"
    diff /tmp/verdicts-one.txt /tmp/verdicts-two.txt || true
  fi
  return "$rc"
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
  # (block 100 gets the write-verify pattern first: the replug at the end reads it back)
  NVMF_FAULT_BROKER=$broker timeout 120 "$BINS/nvmf-reference-target" --vfio-check "$bdf" \
    --vfio-write-verify 100 --allow-destructive "$bdf" \
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
  # replug: the broker plugs the controller back (same root port, serial and backing
  # store); the guest's hotplug finds it, and the driver brings it up again and reads
  # block 100 back as written before the unplug, the media error still there
  # (QEMU finishes the removal a little after the guest let go: until then device_add
  # finds the block node still claimed and says so; asked again, at most 10 times)
  local tries
  for tries in $(seq 1 10); do
    broker_fault replug || rc=1
    for i in $(seq 1 20); do [ -e "/sys/bus/pci/devices/$bdf" ] && break; sleep 0.1; done
    [ ! -e "/sys/bus/pci/devices/$bdf" ] || break
  done
  if [ ! -e "/sys/bus/pci/devices/$bdf" ]; then
    echo "replug: $bdf not back after $tries device_add"; rc=1
  else
    bind_vfio "$bdf"
    timeout 120 "$BINS/nvmf-reference-target" --vfio-check "$bdf" --vfio-read 100 \
      --vfio-read "$MEDIA_LBA" 2>&1 | sed 's/^/replug: /' | tee -a "$RESULTS/vfio-faults.out"
    rc2=${PIPESTATUS[0]}
    # exit 1: exactly the media error's read failed
    [ "$rc2" = 1 ] || { echo "replug: expected exit 1 (the media error), got $rc2"; rc=1; }
  fi
  set -o pipefail
  out=$(cat "$RESULTS/vfio-faults.out")
  grep -qE "stall: read nsid 1 lba 8: a read: no completion within [0-9]+ ms \(CSTS 0x00000001: rdy=1 cfs=0\)" <<<"$out" \
    || { echo "the stalled read did not stall with CSTS ready"; return 1; }
  grep -q "stall: the stalled read completed .* SCT0/SC0x00" <<<"$out" \
    || { echo "the stalled read did not complete after resume"; return 1; }
  grep -q "controller-fatal: a read on queue 2: controller fatal status" <<<"$out" \
    || { echo "the driver did not see the controller go fatal"; return 1; }
  grep -q "pci-error: VFIO error eventfd fired" <<<"$out" || { echo "no VFIO error eventfd"; return 1; }
  grep -q "unplug: VFIO request eventfd fired" <<<"$out" || { echo "no VFIO request eventfd"; return 1; }
  grep -q "replug: .*read nsid 1 lba 100: SCT0/SC0x00.*, the write-verify pattern" <<<"$out" \
    || { echo "the replugged controller did not read block 100 back as written"; return 1; }
  grep -q "replug: .*read nsid 1 lba $MEDIA_LBA: SCT2/SC0x81" <<<"$out" \
    || { echo "the replugged controller lost the media error"; return 1; }
  [ "$rc" = 0 ] || { echo "exit $rc"; return 1; }
}

stage_v_lab() {
  local bdf out rc action
  bdf=$(nvme_bdf)
  [ -n "$bdf" ] || skip "no NVMe controller on this machine"
  [ -x "$BINS/nvmf-conform" ] || skip "no nvmf-conform among the shared binaries"
  [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || bind_vfio "$bdf"
  mkdir -p "$RESULTS/lab-inject"
  # refusals: no consent; a device no kernel-free driver holds
  rc=0; out=$("$BINS/nvmf-conform" inject --device "$bdf" --action bus-master-off --hold 0 2>&1) || rc=$?
  echo "no consent: exit $rc: $out"
  [ "$rc" = 2 ] && grep -q -- "--allow-destructive $bdf" <<<"$out" || { echo "expected a refusal naming --allow-destructive"; return 1; }
  echo "$bdf" > "/sys/bus/pci/devices/$bdf/driver/unbind"
  rc=0; out=$("$BINS/nvmf-conform" inject --device "$bdf" --allow-destructive "$bdf" --action bus-master-off --hold 0 2>&1) || rc=$?
  echo "unbound: exit $rc: $out"
  bind_vfio "$bdf"
  [ "$rc" = 2 ] && grep -q "not vfio-pci" <<<"$out" || { echo "expected a refusal of a device not bound to vfio-pci"; return 1; }
  for action in bus-master-off memory-off reset bus-reset remove; do
    rc=0
    timeout 60 "$BINS/nvmf-conform" inject --device "$bdf" --allow-destructive "$bdf" \
      --action "$action" --hold 1 > "$RESULTS/lab-inject/$action.json" 2> "$RESULTS/lab-inject/$action.err" || rc=$?
    echo "$action: exit $rc: $(tr -d '\n' < "$RESULTS/lab-inject/$action.json" | tr -s ' ' | cut -c1-600)"
    [ "$rc" = 0 ] || { cat "$RESULTS/lab-inject/$action.err"; return 1; }
    # a reset leaves nothing in sysfs to see (took_effect null); the others must show
    case $action in
      reset|bus-reset) grep -q '"took_effect": null' "$RESULTS/lab-inject/$action.json" ;;
      *) grep -q '"took_effect": true' "$RESULTS/lab-inject/$action.json" ;;
    esac || { echo "$action did not show"; return 1; }
    grep -q '"undo_error": null' "$RESULTS/lab-inject/$action.json" || { echo "$action was not undone"; return 1; }
    [ "$(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")" = vfio-pci ] || { echo "$bdf is not bound to vfio-pci after $action"; return 1; }
    # and the controller serves again
    out=$(timeout 120 "$BINS/nvmf-reference-target" --vfio-check "$bdf" --vfio-read 100 2>&1) \
      || { echo "$out"; echo "the controller does not read after $action was undone"; return 1; }
    grep -q "read nsid 1 lba 100: SCT0/SC0x00" <<<"$out" || { echo "$out"; echo "block 100 did not read after $action"; return 1; }
    echo "$action: undone, and the controller reads block 100 through VFIO"
  done
}

main() {
  local failed=0 only stage
  # nvmf_vfio_only=ID,ID (kernel command line, NVMF_SOFTROCE_APPEND): only those stages
  only=$(karg vfio_only "")
  # the catalog first: its cases write where they like, and the stages after it write
  # what the host checks in the backing file once the VM is done
  for stage in v-vfio-catalog:stage_v_catalog v-vfio-two-host:stage_v_two_host v-vfio-check:stage_v \
    v-vfio-initiator:stage_v_initiator v-vfio-recovery:stage_v_recovery v-vfio-fio:stage_v_fio \
    v-lab-inject:stage_v_lab v-vfio-faults:stage_v_faults; do
    [ -z "$only" ] || [[ ",$only," == *",${stage%%:*},"* ]] || continue
    if ! run_stage "${stage%%:*}" "${stage#*:}"; then
      failed=1
      # a failed stage may have left a stall or a throttle in force: lift it, or every
      # stage after it waits on a held read
      [ -z "$(karg broker "")" ] || broker_fault resume || true
    fi
  done
  return $failed
}

# on one line: bash reads a script as it runs, so an edit during a run cannot reach past here;
# run_strict (lib.sh) runs one function of this script in a new bash
case ${NVMF_STAGE_FUNC:-} in "") main; exit $? ;; *) strict_body; exit $? ;; esac
