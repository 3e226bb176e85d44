# shellcheck shell=bash
# Sourced by .ci/run and ci/softroce/ci.sh: the one cargo selection every debug build with
# the verbs fabric uses (the host's verbs tests, and stage a's fabric_contract binary).
# Cargo unifies features per invocation, over the packages chosen and the dev-dependencies
# of the test targets chosen: with the same packages, features and test targets each time,
# the crates are built once (a `--test` of another package alone builds harness,
# reference-target and rdma-sys once more).
VERBS_CARGO=(-p harness -p reference-target -p suites --locked
  --features "harness/verbs reference-target/verbs suites/verbs")
VERBS_TESTS=(--test fabric_contract --test verbs_fabric --test fabric_choice --test cli
  --test control_cli)
