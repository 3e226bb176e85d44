#!/usr/bin/env bash
# Mutation testing of the reference target (docs/mutation.md): cargo-mutants mutates
# reference-target/src/{engine,control} and harness/src/backend/{emulated,ring.rs} (.cargo/mutants.toml) and runs, against
# each mutant, the offload catalog on the full, minimal and tight profiles with no trace
# snapshots (suites/tests/reference_conformance.rs). Not part of CI: a whole run takes hours on 2 cores.
#
#   ci/mutation.sh                          # every mutant; results in target/mutants/mutants.out
#   ci/mutation.sh --shard 1/8              # one eighth (run the 8 shards on 8 machines)
#   ci/mutation.sh -F '^reference-target/src/engine/datapath.rs'   # one file (a regex on the
#                                           # names; --file would add to the configured globs)
#   ci/mutation.sh --list                   # the mutants, without running them
#   ci/mutation.sh --table                  # only print the per-file table of the last run
#
# Time is bounded: a mutant's build is cut off after MUTANTS_BUILD_TIMEOUT seconds (default
# 600: the first build of a scratch tree compiles every dependency) and its test after
# MUTANTS_TEST_TIMEOUT seconds (default 60; the catalog takes under 5 s, so a mutant that
# runs longer spins and is reported as a timeout). Any other option goes to cargo mutants.
# Exit status: 0 when every viable mutant is caught, 2 when some are missed or time out
# (cargo mutants' own codes), 1 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

version=27.1.0
out=${MUTANTS_OUT:-target/mutants}
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,19p' "$0"; exit 0; fi
if [ "${1:-}" = "--table" ]; then
  exec python3 ci/mutation-table.py "$out/mutants.out/outcomes.json"
fi

if ! cargo mutants --version 2>/dev/null | grep -q "$version"; then
  cargo install --locked "cargo-mutants@$version"
fi

case " $* " in
  *" --list "*) exec cargo mutants "$@" ;;
esac

# cargo-mutants' own baseline would run the mutated package's tests instead of the suite's
# (it ignores test_package), so the baseline is run here: the unmutated target must pass.
cargo test --locked -p suites --test reference_conformance
mkdir -p "$out"
status=0
cargo mutants --baseline skip \
  --timeout "${MUTANTS_TEST_TIMEOUT:-60}" \
  --build-timeout "${MUTANTS_BUILD_TIMEOUT:-600}" \
  --output "$out" "$@" || status=$?
python3 ci/mutation-table.py "$out/mutants.out/outcomes.json"
exit "$status"
