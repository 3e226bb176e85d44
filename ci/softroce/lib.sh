# shellcheck shell=bash
# Shared by the host-side soft-RoCE scripts (sourced, not run).
# Everything the VM needs is built from Debian packages into a cache directory, so a fresh
# machine with apt configured can run it and a second run reuses what the first built.
#
# Environment:
#   NVMF_CONFORM_VM_CACHE  cache directory (default: <repo>/target/softroce)
#   NVMF_CONFORM_VM_KVER   kernel release to boot, e.g. 6.1.0-41-amd64 (default: the one
#                          Debian's linux-image-amd64 points at)

SOFTROCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SOFTROCE_DIR/../.." && pwd)
VM_CACHE=${NVMF_CONFORM_VM_CACHE:-$REPO_ROOT/target/softroce}
DEB_DIR=$VM_CACHE/debs
QEMU_ROOT=$VM_CACHE/qemu-root

log() { printf '[softroce %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Run as root or through sudo: apt-get, chroot (to check libraries inside the image) and
# ldconfig -r need it.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt's package lists: 'apt-cache depends' and 'apt-get download' find nothing before an
# update on a fresh machine. Once per cache directory and day is enough.
apt_lists_fresh() {
  local stamp=$VM_CACHE/.apt-updated
  mkdir -p "$VM_CACHE"
  if [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
    log "apt-get update"
    as_root apt-get update -qq
    touch "$stamp"
  fi
}

# The kernel package to boot: Debian's metapackage names the current ABI; an explicit
# NVMF_CONFORM_VM_KVER pins one (the notes found 6.1 and 6.12 both work).
kernel_release() {
  if [ -n "${NVMF_CONFORM_VM_KVER:-}" ]; then
    echo "$NVMF_CONFORM_VM_KVER"
    return
  fi
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -1
}

# Where a built image lives: a directory with vmlinuz, initramfs and a 'stamp'.
image_dir() { echo "$VM_CACHE/image-$(kernel_release)"; }

qemu_bin() { echo "$QEMU_ROOT/usr/bin/qemu-system-x86_64"; }

# QEMU runs from the extracted .debs; its libraries come from the same extraction (the host's
# glibc excepted), so nothing on the host is replaced.
qemu_env() {
  echo "LD_LIBRARY_PATH=$QEMU_ROOT/lib/x86_64-linux-gnu:$QEMU_ROOT/usr/lib/x86_64-linux-gnu"
}

# Prints the Debian packages that the given ones need to run: their Depends and
# Pre-Depends, followed only into libraries (lib*, zlib1g, gcc-*-base) — not into perl,
# python3, debconf or dpkg, which a package's maintainer scripts want but its binaries do
# not. The image's library check (check_libs) proves the result is enough.
deb_closure() {
  local -A seen=()
  local todo=("$@") next p
  while [ ${#todo[@]} -gt 0 ]; do
    next=()
    for p in "${todo[@]}"; do seen[$p]=1; done
    while read -r p; do
      [ -n "${seen[$p]:-}" ] && continue
      case $p in lib*|zlib1g|gcc-*-base) next+=("$p"); seen[$p]=1 ;; esac
    done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "${todo[@]}" 2>/dev/null |
             sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^<][^ ]*\)$/\2/p' | sed 's/:any$//' | sort -u)
    todo=("${next[@]}")
  done
  printf '%s\n' "${!seen[@]}" | sort
}

# Downloads the named packages into DEB_DIR unless a .deb of that name is there already.
fetch_debs() {
  local missing=() p
  mkdir -p "$DEB_DIR"
  for p in "$@"; do
    compgen -G "$DEB_DIR/${p}_*.deb" >/dev/null || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "downloading ${#missing[@]} packages"
    # as root apt warns that it cannot drop to its sandbox user in this directory: harmless
    (cd "$DEB_DIR" && apt-get download -qq "${missing[@]}" 2>&1 | grep -v 'unsandboxed' >&2 || true)
    for p in "${missing[@]}"; do
      compgen -G "$DEB_DIR/${p}_*.deb" >/dev/null || die "apt-get download $p failed"
    done
  fi
}

# The newest cached .deb of a package.
deb_of() { ls -1 "$DEB_DIR/${1}"_*.deb | sort -V | tail -1; }

# Makes sure QEMU is ready under QEMU_ROOT. qemu-system-x86 cannot simply be apt-installed
# on every Debian machine (a newer qemu-utils from backports Breaks the older
# qemu-system-common), so its .debs and their libraries are extracted instead.
ensure_qemu() {
  local qemu
  qemu=$(qemu_bin)
  if [ -x "$qemu" ] && env "$(qemu_env)" "$qemu" --version >/dev/null 2>&1; then
    return
  fi
  apt_lists_fresh
  local pkgs
  # libc6 stays the host's: the host's dynamic loader must match it
  mapfile -t pkgs < <(deb_closure qemu-system-x86 qemu-system-data seabios ipxe-qemu | grep -vx 'libc6')
  pkgs+=(qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu)
  fetch_debs "${pkgs[@]}"
  rm -rf "$QEMU_ROOT"
  mkdir -p "$QEMU_ROOT"
  local p
  for p in "${pkgs[@]}"; do dpkg -x "$(deb_of "$p")" "$QEMU_ROOT"; done
  # one firmware directory for -L: qemu's blobs, SeaBIOS and iPXE ROMs, their symlinks
  # (absolute, pointing into /usr/share) resolved inside QEMU_ROOT
  mkdir -p "$QEMU_ROOT/fw"
  local f t
  for f in "$QEMU_ROOT"/usr/share/qemu/* "$QEMU_ROOT"/usr/share/seabios/* "$QEMU_ROOT"/usr/lib/ipxe/qemu/*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    t=$f
    while [ -L "$t" ]; do
      t=$(readlink "$t")
      case $t in /*) t=$QEMU_ROOT$t ;; *) t=$(dirname "$f")/$t ;; esac
    done
    [ -f "$t" ] && ln -sf "$t" "$QEMU_ROOT/fw/$(basename "$f")"
  done
  local missing
  missing=$(env "$(qemu_env)" ldd "$qemu" | grep 'not found' || true)
  [ -z "$missing" ] || die "qemu libraries not found: $missing"
  log "$(env "$(qemu_env)" "$qemu" --version | head -1)"
}
