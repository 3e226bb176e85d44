#!/usr/bin/env bash
# Builds every cargo-fuzz target of fuzz/ and runs each for a few seconds from the committed
# seed corpus (fuzz/corpus/<target>/). Exit status non-zero when any target crashes, hangs,
# runs out of memory, or fails to build. See docs/fuzzing.md.
#
#   ci/fuzz-smoke.sh                  # smoke: every target 5 s, scratch corpus (CI)
#   ci/fuzz-smoke.sh --time 20 wire_sqe target_capsule   # chosen targets, 20 s each
#   ci/fuzz-smoke.sh --long 3600      # long run: every target 3600 s, corpus kept in
#                                     # fuzz/target/fuzz-corpus/<target>/ between runs
#   ci/fuzz-smoke.sh --release ...    # a smoke built optimized, as long runs are
#   ci/fuzz-smoke.sh --list           # the targets
#
# A smoke builds without optimizations (cargo fuzz build --dev: a cold build in about a
# third of the time; every seed still runs, a few times slower); a long run, or --release,
# builds optimized with debug assertions, as cargo fuzz run does.
# Works on a stable toolchain: cargo-fuzz's nightly-only flags (-Zsanitizer, ...) are
# allowed with RUSTC_BOOTSTRAP=1. FUZZ_TOOLCHAIN=+nightly (or +stable) picks a toolchain;
# FUZZ_SANITIZER=address builds with ASan (slower; the fuzzed code paths have no unsafe code, so
# the default is none). Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=5
long=0
list=0
release=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) secs="$2"; shift 2 ;;
    --long) secs="$2"; long=1; release=1; shift 2 ;;
    --release) release=1; shift ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "fuzz-smoke: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
tc=${FUZZ_TOOLCHAIN:-}
san=${FUZZ_SANITIZER:-none}
command -v cargo-fuzz >/dev/null || { echo "fuzz-smoke: cargo-fuzz not installed: bash ci/setup.sh" >&2; exit 2; }

all=$(cd fuzz && cargo $tc fuzz list)
if [ "$list" = 1 ]; then echo "$all"; exit 0; fi
[ ${#targets[@]} -gt 0 ] || mapfile -t targets <<<"$all"

start=$SECONDS
# -a: debug assertions, so integer overflow panics as it does under `cargo test` (a dev
# build has them anyway).
if [ "$release" = 1 ]; then mode=(-a); profile=release; else mode=(--dev); profile=debug; fi
(cd fuzz && cargo $tc fuzz build "${mode[@]}" -s "$san") || { echo "fuzz-smoke: build failed" >&2; exit 1; }
built=$((SECONDS - start))
host=$(rustc $tc -vV | sed -n 's/^host: //p')
bindir="fuzz/target/$host/$profile"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
  [ -x "$bindir/$t" ] || { echo "fuzz-smoke: no target $t (see --list)" >&2; exit 2; }
  case "$t" in
    config_parse|profile_parse) dict=fuzz/dict/toml.dict ;;
    *) dict=fuzz/dict/nvme.dict ;;
  esac
  if [ "$long" = 1 ]; then work="fuzz/target/fuzz-corpus/$t"; else work="$scratch/$t"; fi
  mkdir -p "$work" "fuzz/artifacts/$t"
  log="$scratch/$t.log"
  echo "--- $t (${secs}s)"
  set +e
  # The first corpus directory gets libFuzzer's new inputs; the committed seeds are read only.
  "$bindir/$t" "$work" "fuzz/corpus/$t" \
    -dict="$dict" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
    -max_len=8193 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
  rc=$?
  set -e
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/.*exec\/s: *\([0-9]*\).*/\1/p' <<<"$done_line")
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    summary+=("$(printf '%-18s %10s %8s  FAILED (exit %s)' "$t" "${execs:-?}" "${rate:-?}" "$rc")")
    grep -E 'panicked at|SUMMARY|ERROR: libFuzzer|Test unit written|^Base64' -A3 "$log" | head -40 >&2 || true
    tail -n 60 "$log" > "fuzz/artifacts/$t/last-run.log"
    echo "fuzz-smoke: $t failed; log tail in fuzz/artifacts/$t/last-run.log; replay with" >&2
    echo "  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${mode[*]} -s $san $t artifacts/$t/<crash-file>)" >&2
  else
    summary+=("$(printf '%-18s %10s %8s  ok' "$t" "${execs:-?}" "${rate:-?}")")
  fi
done

echo
printf '%-18s %10s %8s  %s\n' target execs exec/s result
printf '%s\n' "${summary[@]}"
echo "fuzz-smoke: build ${built}s, total $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
  exit 1
fi
