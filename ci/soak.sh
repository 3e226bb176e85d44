#!/usr/bin/env bash
# A 60-second soak against the reference target on the simulated fabric (docs/soak.md).
# The seed is the number of commits: each commit explores another part of the space, and a
# divergence prints the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
seed=$(git rev-list --count HEAD 2>/dev/null || echo 0)
echo "soak: seed $seed"
cargo conform soak --duration "${NVMF_SOAK_SECS:-60}" --seed "$seed" --report-dir "$dir"
xmllint --noout --schema fixtures/schemas/junit-10.xsd "$dir/junit.xml"
