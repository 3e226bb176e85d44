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

# A capture of one case decodes as NVMe-oF in Wireshark's dissectors.
cargo conform replay datapath.write-read.lba-4096 --pcap "$dir/case.pcap" >/dev/null
decoded=$(tshark -r "$dir/case.pcap" 2>/dev/null)
for want in "CM: ConnectRequest" "NVMe Write" "NVMe Read" "NVMeOF Data for Write" "CQE for Read"; do
  if ! grep -q "$want" <<<"$decoded"; then
    echo "check-reports: tshark does not show \"$want\" in the capture" >&2
    exit 1
  fi
done
echo "check-reports: capture decodes as NVMe-oF ($(wc -l <<<"$decoded") frames)"
