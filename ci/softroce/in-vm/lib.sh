# shellcheck shell=bash
# Helpers for the in-VM stages (sourced by bash inside the soft-RoCE VM).
# Layout of the shares (see guest/init): /mnt/repo the repository (read-only), /mnt/bins the
# project's binaries, /mnt/results this run's results, copied back to the host.

RESULTS=/mnt/results
# shellcheck disable=SC2034  # used by the stage scripts
BINS=/mnt/bins
STAGES=$RESULTS/stages
FIO_DIR=$RESULTS/fio
mkdir -p "$STAGES" "$FIO_DIR"

uptime_s() { cut -d' ' -f1 /proc/uptime; }
say() { echo "[vm $(uptime_s)s] $*"; }

# A kernel argument nvmf_NAME=VALUE, or the default: run-vm.sh --append passes settings.
karg() {
  local v
  v=$(tr ' ' '\n' < /proc/cmdline | sed -n "s/^nvmf_$1=//p" | tail -1)
  echo "${v:-$2}"
}

# Runs one stage: FUNC in a new bash with errexit, its output in stages/ID.log (and on the
# console), its verdict in stages/ID.status as "pass", "fail: ..." or "skip: REASON" and
# its duration in stages/ID.seconds. A stage skips by calling skip; any failing command
# fails it. Returns 0 on pass or skip.
run_stage() {
  local id=$1 func=$2 t0 rc
  t0=$(uptime_s)
  say "stage $id: start"
  rm -f "$STAGES/$id.status"
  set +e
  STAGE_ID=$id run_strict "$func" 2>&1 | tee "$STAGES/$id.log"
  rc=${PIPESTATUS[0]}
  set -e
  echo "$t0 $(uptime_s)" | awk '{ printf "%.1f\n", $2 - $1 }' > "$STAGES/$id.seconds"
  if [ -f "$STAGES/$id.status" ]; then
    :  # skip wrote it
  elif [ "$rc" = 0 ]; then
    echo pass > "$STAGES/$id.status"
  else
    # The failing cases' own lines when the stage printed any (FAIL / ERROR / a soak's
    # DIVERGENCE), else its last lines: what the CI log shows of a failed stage.
    local why
    why=$(grep -E '^(FAIL|ERROR|DIVERGENCE) ' "$STAGES/$id.log" | head -4 | tr '\n' ' ' | cut -c1-600)
    [ -n "$why" ] || why="last lines: $(tail -3 "$STAGES/$id.log" | tr '\n' ' ' | cut -c1-300)"
    echo "fail: exit $rc ($why)" > "$STAGES/$id.status"
  fi
  say "stage $id: $(cat "$STAGES/$id.status") ($(cat "$STAGES/$id.seconds") s)"
  case $(cat "$STAGES/$id.status") in fail*) return 1 ;; esac
}

# The script that sourced this file, for run_strict.
STAGE_SCRIPT=$(readlink -f "$0")

# Runs FUNC, a function of the calling script, in a new bash that sources that script with
# NVMF_STAGE_FUNC=FUNC (the script's last line then runs strict_body instead of main).
# A function called from an `||` list or an `if` runs with errexit ignored, whatever it
# sets (a bash rule that reaches into subshells): a failing command would not stop it.
# A new process starts with a clean slate.
run_strict() {
  NVMF_STAGE_FUNC=$1 STAGE_ID=${STAGE_ID:-} bash "$STAGE_SCRIPT"
}

# The body of run_strict's process: FUNC with errexit in force.
strict_body() {
  set -euo pipefail
  shopt -s inherit_errexit
  "$NVMF_STAGE_FUNC"
}

# Called inside a stage: record the reason and leave the stage.
skip() {
  echo "skip: $*" > "$STAGES/$STAGE_ID.status"
  echo "skipped: $*"
  exit 0
}

# An IPv4 address on eth0 and a soft-RoCE device rxe0 on top of it.
setup_rxe() {
  local ip=$1
  ip link set eth0 up
  ip addr add "$ip/24" dev eth0
  modprobe rdma_rxe
  modprobe ib_uverbs
  modprobe rdma_ucm
  rdma link add rxe0 type rxe netdev eth0
  local n=0
  until rdma link show rxe0/1 | grep -q 'state ACTIVE'; do
    n=$((n + 1)); [ $n -lt 20 ] || { rdma link show; return 1; }; sleep 0.5
  done
  rdma link show rxe0/1
}

# The host identity the initiator presents. Kernel 6.12 refuses a connect whose hostid does
# not match the hostnqn's uuid, and 'nvme gen-hostnqn' gives all zeros here (QEMU's SMBIOS
# product uuid is zero), so both are written from one random uuid.
setup_host_identity() {
  local u
  u=$(cat /proc/sys/kernel/random/uuid)
  mkdir -p /etc/nvme
  echo "nqn.2014-08.org.nvmexpress:uuid:$u" > /etc/nvme/hostnqn
  echo "$u" > /etc/nvme/hostid
  modprobe nvme-rdma
}

# The kernel's own NVMe-oF target (nvmet-rdma) over configfs: subsystem NQN, one namespace
# on DEVICE, one RDMA port on ADDR:PORT.
kernel_target_start() {
  local nqn=$1 device=$2 addr=$3 port=$4 portid=${5:-1}
  modprobe nvmet
  modprobe nvmet-rdma
  local s=/sys/kernel/config/nvmet/subsystems/$nqn p=/sys/kernel/config/nvmet/ports/$portid
  mkdir "$s"
  echo 1 > "$s/attr_allow_any_host"
  mkdir "$s/namespaces/1"
  echo -n "$device" > "$s/namespaces/1/device_path"
  echo 1 > "$s/namespaces/1/enable"
  mkdir "$p"
  echo rdma > "$p/addr_trtype"
  echo ipv4 > "$p/addr_adrfam"
  echo "$addr" > "$p/addr_traddr"
  echo "$port" > "$p/addr_trsvcid"
  ln -s "$s" "$p/subsystems/$nqn"
  say "kernel target: $nqn on $addr:$port ($device)"
}

kernel_target_stop() {
  local nqn=$1 portid=${2:-1}
  local s=/sys/kernel/config/nvmet/subsystems/$nqn p=/sys/kernel/config/nvmet/ports/$portid
  rm -f "$p/subsystems/$nqn"
  rmdir "$p" 2>/dev/null || true
  [ -d "$s" ] || return 0
  echo 0 > "$s/namespaces/1/enable"
  rmdir "$s/namespaces/1" "$s"
}

# A 1 GiB RAM-backed null_blk device for the kernel target's namespace.
null_blk_start() {
  [ -b /dev/nullb0 ] || modprobe null_blk nr_devices=1 gb=1 memory_backed=1
  echo /dev/nullb0
}

# Connects to NQN at ADDR:PORT over RDMA and prints the namespace's block device.
# With native multipath (Debian's default) the block device belongs to the subsystem, so it
# is found through /sys/class/nvme-subsystem by NQN.
nvme_connect() {
  local addr=$1 port=$2 nqn=$3 s ns n=0
  nvme connect -t rdma -a "$addr" -s "$port" -n "$nqn" >&2
  # the kernel scans namespaces after connect returns; under emulation that takes seconds
  while [ $n -lt 240 ]; do
    for s in /sys/class/nvme-subsystem/*; do
      [ "$(cat "$s/subsysnqn" 2>/dev/null)" = "$nqn" ] || continue
      # a multipath head disk sits in the subsystem (CMIC multi-controller and native
      # multipath); otherwise the disk sits in its controller
      for ns in "$s"/nvme*n* "$s"/nvme*/nvme*n*; do
        [ -e "$ns" ] || continue
        case ${ns##*/} in nvme*c*n*) continue ;; esac   # a hidden path, not a disk
        [ -b "/dev/${ns##*/}" ] && { echo "/dev/${ns##*/}"; return 0; }
      done
    done
    n=$((n + 1)); sleep 0.25
  done
  {
    echo "no namespace appeared for $nqn; what the kernel shows:"
    for s in /sys/class/nvme-subsystem/*; do
      echo "$s: subsysnqn=$(cat "$s/subsysnqn" 2>/dev/null) entries: $(ls "$s" | tr '\n' ' ')"
    done
    ls -l /dev/nvme* 2>&1 | head -20
    dmesg | grep -i nvme | tail -20
  } >&2
  return 1
}

# The first subsystem NQN (not the discovery one) that the discovery controller at
# ADDR:PORT lists.
discover_nqn() {
  nvme discover -t rdma -a "$1" -s "$2" | tee /dev/stderr |
    sed -n 's/^subnqn: *//p' | grep -v 'discovery' | head -1
}

# Writes 8 MiB of random data with O_DIRECT, reads it back and compares; then a fio job
# that writes 16 MiB of 4 KiB blocks at random with crc32c verification.
verify_device() {
  local dev=$1
  dd if=/dev/urandom of=/tmp/pattern bs=1M count=8 status=none
  dd if=/tmp/pattern of="$dev" bs=1M count=8 oflag=direct conv=fsync status=none
  dd if="$dev" of=/tmp/readback bs=1M count=8 iflag=direct status=none
  cmp /tmp/pattern /tmp/readback
  say "dd: 8 MiB written, read back and compared on $dev: OK"
  fio --name=verify --filename="$dev" --rw=randwrite --bs=4k --size=16M --offset=16M \
    --ioengine=libaio --iodepth=16 --direct=1 --verify=crc32c --do_verify=1 \
    --verify_fatal=1 --output-format=terse > /tmp/fio-verify.out
  say "fio: 16 MiB random 4 KiB writes verified with crc32c on $dev: OK"
  # both targets advertise MDTS 1 MiB (the reference target serves above max_io_sz in
  # software)
  passthru_io "$dev" $((512 * 1024))
  passthru_io "$dev" $((1024 * 1024))
}

# nvme-cli passthrough I/O of SIZE bytes as one command each (NVME_IOCTL_SUBMIT_IO, what
# blktests' nvme/029 does): a write of random data at block 0 of DEV, a read of it, compared.
# The host refuses a size above the target's MDTS before sending it.
passthru_io() {
  local dev=$1 size=$2 lba blocks
  lba=$(blockdev --getss "$dev")
  blocks=$((size / lba))
  head -c "$size" /dev/urandom > /tmp/passthru-in
  rm -f /tmp/passthru-out
  timeout 60 nvme write "$dev" --start-block=0 --block-count=$((blocks - 1)) \
    --data-size="$size" --data=/tmp/passthru-in > /dev/null
  timeout 60 nvme read "$dev" --start-block=0 --block-count=$((blocks - 1)) \
    --data-size="$size" --data=/tmp/passthru-out > /dev/null
  cmp /tmp/passthru-in /tmp/passthru-out
  say "nvme-cli passthrough: $size bytes written and read back as one command each on $dev: OK"
}

# One fio job, JSON into fio/LABEL-JOB-rREP.json: 4 KiB random I/O at queue depth QD on the
# first 256 MiB of DEV, time-based.
fio_job() {
  local label=$1 dev=$2 rw=$3 qd=$4 rep=$5 runtime=$6
  local out=$FIO_DIR/$label-$rw-qd$qd-r$rep.json
  # explicit checks: bench calls this where errexit does not hold
  [ -b "$dev" ] || { echo "fio_job $label: '$dev' is not a block device"; return 1; }
  rm -f /tmp/fio.json
  fio --name="$rw-qd$qd" --filename="$dev" --rw="$rw" --bs=4k --iodepth="$qd" \
    --ioengine=libaio --direct=1 --size=256M --time_based --runtime="$runtime" \
    --ramp_time=1 --norandommap --randrepeat=0 --output-format=json --output=/tmp/fio.json || return 1
  cp /tmp/fio.json "$out" || return 1
  say "fio $label $rw qd$qd rep $rep done"
}

# Does BINARY's --help (or SUBCOMMAND's) offer the verbs fabric? Builds without it either
# lack the word or say "not built".
offers_verbs() {
  local help
  help=$("$@" --help 2>&1 || true)
  grep -q -- '--fabric' <<<"$help" && grep -qi 'verbs' <<<"$help" && ! grep -qi 'verbs.*not built' <<<"$help"
}

# The lab secret of the control channel (both ends name it; made by the target's side).
LAB_SECRET=/tmp/lab.secret

# Two-host mode: starts nvmf-reference-target --control ADDR on rxe0 with a new lab secret
# in $LAB_SECRET (TLS, docs/two-host.md) and the further ARGS (what it serves: --target
# plugin:PATH …), its output in LOG, and waits (at most 60 s) until it serves; its pid in
# CONTROL_PID. Usage: control_target_start ADDR LOG [ARGS…]
control_target_start() {
  local addr=$1 log=$2 n=0
  shift 2
  rm -f "$LAB_SECRET"
  "$BINS/nvmf-reference-target" --new-secret "$LAB_SECRET" > "$log" 2>&1 || { cat "$log"; return 1; }
  "$BINS/nvmf-reference-target" --fabric verbs --device rxe0 --control "$addr" \
    --control-secret "$LAB_SECRET" "$@" \
    --log-level "$(karg target_log info)" >> "$log" 2>&1 &
  CONTROL_PID=$!
  until grep -qs "control channel on" "$log"; do
    n=$((n + 1))
    kill -0 "$CONTROL_PID" 2>/dev/null || { cat "$log"; return 1; }
    [ $n -lt 120 ] || { echo "no control channel within 60 s"; kill "$CONTROL_PID"; return 1; }
    sleep 0.5
  done
}

# Stops what control_target_start started.
control_target_stop() {
  kill "$CONTROL_PID" 2>/dev/null || true
  wait "$CONTROL_PID" 2>/dev/null || true
}

# Two-host mode: nvmf-conform run --connect ADDR over rxe0 with the lab secret in
# $LAB_SECRET (every offload case: control-plane cases start targets there, the others use its
# device through the channel; the fabric contract's cases never reach the channel, and stages
# a and b run them) with --timeout-scale SCALE, its reports in REPORTS; only shard SHARD
# (`i/n`) of them when given.
remote_conform() {
  cd /mnt/repo
  "$BINS/nvmf-conform" run --fabric verbs --device rxe0 --connect "$1" \
    --control-secret "$LAB_SECRET" --snapshots /mnt/repo/suites/snapshots \
    --filter tag:api --filter tag:io --filter tag:faults --filter tag:connect --filter tag:security \
    ${4:+--shard "$4"} --timeout-scale "$2" --report-dir "$3"
}
