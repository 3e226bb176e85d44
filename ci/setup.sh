#!/usr/bin/env bash
# Installs what nvmf-conform's build, tests and report checks need on a fresh Debian machine.
# Idempotent: skips what is already there. Run as root (or with sudo available).
set -euo pipefail

APT_PACKAGES=(
  libxml2-utils   # xmllint: validates the JUnit report against fixtures/schemas/junit-10.xsd
  tshark          # decodes --pcap captures in harness/tests/capture.rs (no non-root capture: debconf default)
  g++             # libFuzzer's C++ sources, built by libfuzzer-sys for ci/fuzz-smoke.sh
  libclang-dev    # bindgen, for rdma-sys: the verbs fabric (--features verbs) CI lints and tests
  libibverbs-dev  # rdma-core's verbs headers and library, for the same
  librdmacm-dev   # rdma-core's connection manager, for the same
)

need=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "ci/setup.sh: cargo not found: install Rust (rustup) first" >&2; exit 1; }
for c in rustfmt clippy; do
  cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$c"
done
# cargo-fuzz for ci/fuzz-smoke.sh (works on stable with RUSTC_BOOTSTRAP=1; docs/fuzzing.md).
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2 --quiet
echo "ci/setup.sh: ready ($(cargo --version))"
