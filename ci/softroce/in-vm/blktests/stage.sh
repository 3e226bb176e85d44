# Stage t (blktests): blktests' nvme group, vendored at ci/softroce/vendor/blktests, run over
# rdma on rxe0 against nvmf-reference-target (reference.sh) and then against the kernel's
# nvmet-rdma (kernel.sh), each an external target through NVME_TARGET_CONTROL, with 16 MiB
# namespaces. Sourced by stages.sh (which provides IP, BINS, RESULTS, karg, say, skip).
#
# Kernel arguments: nvmf_blktests (the tests, comma separated, e.g. nvme/029,nvme/004, or
# "nvme" for the whole group; default: $BLKTESTS_SELECTION), nvmf_blktests_bound (seconds
# for each target's run, default 420), nvmf_blktests_iter (NVME_NUM_ITER, the iterations
# of the tests that loop, default 100; blktests' own default is 1000), nvmf_shard (i/n: with
# the default selection, only its i-th of n parts, nvme/029 in every part; ci.sh alternates
# the halves by commit), nvmf_blktests_kernel (all, the default: the kernel target runs
# the whole selection beside the reference target; on-failure: only the tests the
# reference target did not pass, to tell the environment's failures from the target's, as
# ci.sh asks to keep CI short).
#
# Results: $RESULTS/blktests/TARGET/ (blktests' own result files: status, runtime, output),
# the run's console in blktests/TARGET.log; ci/softroce/report.py puts them side by side in
# reports/softroce/blktests.md. The stage fails when nvme/029 does not pass against the
# reference target, or when a test passes against the kernel target and fails against the
# reference target (but for the configfs-only tests), or when a target gave no result at all.

# The CI selection: every test of the group that applies to an external rdma target (about
# 4 minutes per target under TCG); docs/blktests.md lists every test of the group with the
# reason it is in or out.
BLKTESTS_SELECTION=nvme/003,nvme/004,nvme/005,nvme/006,nvme/008,nvme/010,nvme/014,nvme/018,nvme/019,nvme/021,nvme/022,nvme/023,nvme/025,nvme/026,nvme/027,nvme/028,nvme/029,nvme/031,nvme/040,nvme/061

# Tests of the group that edit the kernel target's configfs objects themselves: against the
# kernel target they can pass, against any other external target they cannot; the stage
# does not compare them (docs/blktests.md).
BLKTESTS_CONFIGFS_ONLY=" nvme/030 nvme/038 nvme/048 nvme/051 nvme/054 nvme/057 nvme/058 "

# Runs the selection against TARGET (reference or kernel) on PORT, its results under LABEL
# (default: TARGET).
blktests_run() {
  local target=$1 port=$2 bound=$3 tests=$4 label=${5:-$1} out rc=0
  out=/tmp/blktests-out-$label
  rm -rf "$out" "/tmp/blktests-$label"
  say "blktests against the $target target (port $port, as $label): ${tests//,/ }"
  # blktests unloads after a test the modules it loaded for it: loaded here, they stay
  modprobe -a nvmet nvmet-rdma nvme-rdma loop
  export BLKTESTS_TRADDR=$IP BLKTESTS_TRSVCID=$port BLKTESTS_STATE=/tmp/blktests-$label
  export BLKTESTS_IMG_SIZE=$((16 << 20)) BLKTESTS_BIN=$BINS/nvmf-reference-target
  export NVME_TARGET_CONTROL=/tmp/blktests-control/$target.sh USE_RXE=1 NVMET_TRTYPES=rdma
  export NVME_IMG_SIZE=16M NVME_NUM_ITER=$NUM_ITER
  # shellcheck disable=SC2086 # one word per test
  (cd /tmp/blktests && timeout -k 10 "$bound" ./check -o "$out" ${tests//,/ }) \
    > "$RESULTS/blktests/$label.log" 2>&1 || rc=$?
  [ "$rc" != 124 ] || echo "the run against the $target target did not end within $bound s" >> "$RESULTS/blktests/$label.log"
  # blktests' own results, and what the control script logged
  mkdir -p "$RESULTS/blktests/$label"
  cp -r "$out"/. "$RESULTS/blktests/$label/" 2>/dev/null || true
  cp "/tmp/blktests-$label/"*.log "$RESULTS/blktests/$label/" 2>/dev/null || true
  # a run cut short leaves its target up
  nvme disconnect-all > /dev/null 2>&1 || true
  "$NVME_TARGET_CONTROL" cleanup --subsysnqn blktests-subsystem-1 > /dev/null 2>&1 || true
  grep -E '^nvme/' "$RESULTS/blktests/$label.log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' | tr -s ' ' || true
}

# STATUS of TEST against TARGET from blktests' result file (pass, fail, not run; "-" when absent).
blktests_status() {
  local f
  for f in "$RESULTS/blktests/$1/"nodev*/"$2"; do
    [ -f "$f" ] || continue
    awk -F'\t' '$1 == "status" { print $2 }' "$f"
    return
  done
  echo -
}

# The I-th of N parts (SHARD is I/N) of the comma-separated TESTS, every N-th test from the
# I-th, with nvme/029 (the stage's own check) in every part.
blktests_shard() {
  local i=${2%/*} n=${2#*/}
  echo "$1" | tr ',' '\n' | awk -v i="$i" -v n="$n" \
    '(NR - 1) % n == i - 1 || $0 == "nvme/029"' | paste -sd, -
}

stage_t() {
  [ -x "$BINS/nvmf-reference-target" ] || skip "no nvmf-reference-target in the shared binaries"
  offers_verbs "$BINS/nvmf-reference-target" || skip "nvmf-reference-target has no --fabric verbs in this build"
  [ -x /mnt/repo/ci/softroce/vendor/blktests/check ] || skip "no vendored blktests at ci/softroce/vendor/blktests"
  local tests bound t ref ker failed=0
  tests=$(karg blktests "$BLKTESTS_SELECTION")
  [ "$tests" != nvme ] || tests=$(cd /mnt/repo/ci/softroce/vendor/blktests && ls tests/nvme | grep -E '^[0-9]+$' | sed 's|^|nvme/|' | tr '\n' ',')
  tests=${tests%,}
  local shard
  shard=$(karg shard "")
  if [ -n "$shard" ] && [ "$tests" = "$BLKTESTS_SELECTION" ]; then
    tests=$(blktests_shard "$tests" "$shard")
    say "blktests: shard $shard of the CI selection"
  fi
  bound=$(karg blktests_bound 420)
  NUM_ITER=$(karg blktests_iter 100)
  nvme disconnect-all > /dev/null 2>&1 || true
  # bash's process substitution needs /dev/fd, which the VM's devtmpfs lacks
  [ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
  # blktests writes beside its scripts: a copy in RAM; the control scripts run from there too
  rm -rf /tmp/blktests /tmp/blktests-control
  cp -r /mnt/repo/ci/softroce/vendor/blktests /tmp/blktests
  cp -r /mnt/repo/ci/softroce/in-vm/blktests /tmp/blktests-control
  mkdir -p "$RESULTS/blktests"
  blktests_run reference 4441 "$bound" "$tests"
  # The kernel target: the whole selection, or (on-failure) only what the reference target
  # did not pass, the configfs-only tests aside (never compared).
  local kernel_mode kernel_tests="$tests"
  kernel_mode=$(karg blktests_kernel all)
  if [ "$kernel_mode" = on-failure ]; then
    kernel_tests=""
    for t in ${tests//,/ }; do
      [[ "$BLKTESTS_CONFIGFS_ONLY" != *" $t "* ]] || continue
      [ "$(blktests_status reference "$t")" = pass ] || kernel_tests="${kernel_tests:+$kernel_tests,}$t"
    done
    say "blktests: the kernel target runs only what the reference target did not pass: ${kernel_tests:-nothing}"
  fi
  [ -z "$kernel_tests" ] || blktests_run kernel 4440 "$bound" "$kernel_tests"
  # A test that passes against the kernel target and not against the reference target is
  # run against the reference target once more: several tests wait for host states with
  # 5-second bounds (nvme/040, 061), which a loaded TCG VM can miss. Both results are
  # reported; only a test that fails twice fails the stage.
  local again=""
  for t in ${tests//,/ }; do
    [[ "$BLKTESTS_CONFIGFS_ONLY" != *" $t "* ]] || continue
    if [ "$(blktests_status kernel "$t")" = pass ] && [ "$(blktests_status reference "$t")" != pass ]; then
      again="${again:+$again,}$t"
    fi
  done
  [ -z "$again" ] || blktests_run reference 4441 "$bound" "$again" reference-again
  echo "test | reference | kernel"
  local -A ran=()
  for t in ${tests//,/ }; do
    ref=$(blktests_status reference "$t")
    ker=$(blktests_status kernel "$t")
    [ "$ref" = - ] || ran[reference]=1
    [ "$ker" = - ] || ran[kernel]=1
    if [[ "$BLKTESTS_CONFIGFS_ONLY" == *" $t "* ]]; then
      echo "$t | $ref | $ker (configfs-only: not compared)"
      continue
    fi
    if [ "$ker" = pass ] && [ "$ref" != pass ] && [ "$(blktests_status reference-again "$t")" = pass ]; then
      echo "$t | $ref, then pass on its re-run | $ker (timing: see blktests/reference-again.log)"
      continue
    fi
    echo "$t | $ref | $ker"
    if [ "$ker" = pass ] && [ "$ref" != pass ]; then
      echo "FAIL $t: passes against the kernel target, $ref against the reference target (and again on its re-run)"
      failed=1
    fi
  done
  [ -n "${ran[reference]:-}" ] || { echo "FAIL blktests: no result against the reference target (see blktests/reference.log)"; failed=1; }
  if [ -n "$kernel_tests" ] && [ -z "${ran[kernel]:-}" ]; then
    echo "FAIL blktests: no result against the kernel target (see blktests/kernel.log)"; failed=1
  fi
  if [[ ",$tests," == *",nvme/029,"* ]] && [ "$(blktests_status reference nvme/029)" != pass ]; then
    echo "FAIL nvme/029 (nvme-cli passthrough I/O up to 512 KiB): $(blktests_status reference nvme/029) against the reference target"
    failed=1
  fi
  return $failed
}
