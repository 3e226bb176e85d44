#!/usr/bin/env bash
# Runs the README's main job into a scratch report directory and checks what it wrote:
# the JUnit XML validates against fixtures/schemas/junit-10.xsd, and summary.md and
# results.json exist and agree with it on the number of cases.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

cargo conform run --report-dir "$dir"

xmllint --noout --schema fixtures/schemas/junit-10.xsd "$dir/junit.xml"
test -s "$dir/summary.md"
junit_cases=$(grep -o '<testcase ' "$dir/junit.xml" | wc -l)
json_cases=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$dir/results.json")
if [ "$junit_cases" != "$json_cases" ]; then
  echo "check-reports: junit.xml has $junit_cases cases, results.json $json_cases" >&2
  exit 1
fi
echo "check-reports: $junit_cases cases; junit.xml valid against junit-10.xsd"
