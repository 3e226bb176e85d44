#!/usr/bin/env bash
# Builds the soft-RoCE VM: Debian's kernel (rdma_rxe, nvme-rdma, nvmet-rdma as modules) and
# an initramfs holding the whole root filesystem (rdma-core, nvme-cli, fio and every library
# they load), from Debian packages only. Cached under NVMF_CONFORM_VM_CACHE: a second run
# with the same inputs does nothing; a changed package list, init or this script rebuilds.
#
#   ci/softroce/build-image.sh          build (or reuse) the image; prints its directory
#   ci/softroce/build-image.sh --force  rebuild even if cached
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# What the VM runs. Their libraries are added by deb_closure.
USERLAND_PKGS=(
  busybox-static dash bash coreutils kmod iproute2 iputils-ping
  ibverbs-providers ibverbs-utils rdmacm-utils libibverbs1 librdmacm1 perftest
  nvme-cli libdbus-1-3   # nvme-cli dlopens libdbus
  fio
  # blktests (stage t): what its scripts run beyond busybox
  util-linux mount gawk diffutils bc uuid-runtime sed grep findutils procps udev
  bsdextrautils   # column, for blktests' output
)

# Kernel modules to carry; their dependencies come along through modules.dep.
MODULES=(
  rdma_rxe ib_core ib_uverbs ib_umad rdma_cm rdma_ucm iw_cm ib_cm
  nvme-core nvme-fabrics nvme-rdma nvmet nvmet-rdma null_blk loop
  virtio_net virtio_pci 9p 9pnet_virtio configfs
  crc32_generic crc32-pclmul crc32c_generic crc32c-intel
  irqbypass vfio_virqfd vfio vfio_iommu_type1 vfio-pci-core vfio-pci   # the VFIO backend
  nvme   # the PCI driver: nvmet-rdma serves the same controller as a block device (stage v)
)

FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

# The cache key: everything that decides the image's content.
image_key() {
  {
    kernel_release
    printf '%s\n' "${USERLAND_PKGS[@]}" "${MODULES[@]}"
    cat "$SOFTROCE_DIR/guest/init" "$0" "$SOFTROCE_DIR/lib.sh"
  } | sha256sum | cut -c1-16
}

# depmod/modprobe from Debian's kmod .deb: the host needs no kmod of its own.
prepare_kmod() {
  local tools=$VM_CACHE/kmod
  if [ ! -x "$tools/b/depmod" ]; then
    rm -rf "$tools"
    dpkg -x "$(deb_of kmod)" "$tools"
    mkdir -p "$tools/b"
    for t in depmod modprobe; do ln -sf ../bin/kmod "$tools/b/$t"; done
  fi
  KMOD_BIN=$tools/b
}

# Unpacks the packages into the root, then fills the gaps with busybox applets — never in
# place of a real tool (busybox's ip and modprobe lack what rdma and nvmet need).
populate_rootfs() {
  local root=$1; shift
  local p a dir found
  for p in "$@"; do dpkg -x "$(deb_of "$p")" "$root"; done
  rm -rf "$root"/usr/share/{doc,man,locale,info,lintian,bash-completion,zsh}
  for a in $("$root/bin/busybox" --list-full); do
    found=0
    for dir in bin sbin usr/bin usr/sbin; do
      if [ -e "$root/$dir/${a##*/}" ] || [ -L "$root/$dir/${a##*/}" ]; then found=1; fi
    done
    if [ $found = 0 ]; then
      mkdir -p "$root/$(dirname "$a")"
      ln -s /bin/busybox "$root/$a"
    fi
  done
  # dash, not busybox ash: ash runs its own applets ahead of PATH
  ln -sf dash "$root/bin/sh"
  mkdir -p "$root"/{proc,sys,dev,tmp,run,root,mnt,var/run,etc/nvme}
  echo 'include /etc/ld.so.conf.d/*.conf' > "$root/etc/ld.so.conf"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  echo '127.0.0.1 localhost' > "$root/etc/hosts"
  as_root ldconfig -r "$root"
}

# Every dynamically linked binary and library of the image must find its libraries inside
# the image (Debian's fio alone needs about 37 library packages): checked with the image's
# own dynamic loader, chrooted, so nothing of the host can stand in.
check_libs() {
  local root=$1 f out bad=0
  while IFS= read -r f; do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
    out=$(as_root chroot "$root" /lib64/ld-linux-x86-64.so.2 --list "${f#"$root"}" 2>&1 | grep 'not found' || true)
    if [ -n "$out" ]; then
      log "missing libraries for ${f#"$root"}: $out"
      bad=1
    fi
  done < <(find "$root"/bin "$root"/sbin "$root"/usr/bin "$root"/usr/sbin \
             "$root"/usr/lib/x86_64-linux-gnu/libibverbs -type f 2>/dev/null)
  [ $bad = 0 ] || die "the image is missing libraries"
  log "every ELF binary in the image resolves its libraries"
}

# The kernel modules and their dependency closure, with a modules.dep of their own.
install_modules() {
  local root=$1 kern=$2 kver=$3 f m
  for m in "${MODULES[@]}"; do
    "$KMOD_BIN/modprobe" -d "$kern" -S "$kver" --show-depends "$m"
  done | awk '$1 == "insmod" { print $2 }' | sort -u | while read -r f; do
    mkdir -p "$root/$(dirname "${f#"$kern"/}")"
    cp "$f" "$root/${f#"$kern"/}"
  done
  cp "$kern/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
  "$KMOD_BIN/depmod" -b "$root" "$kver"
}

# cpio (newc) of the root, zstd when the host has it (faster to unpack under emulation).
pack_initramfs() {
  local root=$1 out=$2
  if command -v zstd >/dev/null; then
    (cd "$root" && find . | cpio -o -H newc --quiet | zstd -q -T0 -10 -f -o "$out")
  else
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -6 > "$out")
  fi
}

main() {
  local kver key img t0=$SECONDS
  apt_lists_fresh
  kver=$(kernel_release)
  [ -n "$kver" ] || die "no kernel package found (apt-cache depends linux-image-amd64)"
  key=$(image_key)
  img=$(image_dir)
  if [ $FORCE = 0 ] && [ "$(cat "$img/stamp" 2>/dev/null)" = "$key" ]; then
    log "image cached: $img (kernel $kver)"
    echo "$img"
    return
  fi
  command -v cpio >/dev/null || die "cpio is needed on the host (apt-get install cpio)"
  log "building the image for kernel $kver"
  local pkgs
  mapfile -t pkgs < <(deb_closure "${USERLAND_PKGS[@]}")
  fetch_debs "${pkgs[@]}" "linux-image-$kver"
  prepare_kmod

  local kern=$VM_CACHE/kernel-$kver
  if [ ! -e "$kern/lib/modules/$kver/modules.dep" ]; then
    rm -rf "$kern"
    dpkg -x "$(deb_of "linux-image-$kver")" "$kern"
    "$KMOD_BIN/depmod" -b "$kern" "$kver"
  fi

  local root=$VM_CACHE/rootfs
  as_root rm -rf "$root"
  mkdir -p "$root"
  populate_rootfs "$root" "${pkgs[@]}"
  check_libs "$root"
  install_modules "$root" "$kern" "$kver"
  cp "$SOFTROCE_DIR/guest/init" "$root/init"
  # the kernel's configuration, where tools look for it (blktests decides by it which
  # tests the kernel can run)
  mkdir -p "$root/boot"
  cp "$kern/boot/config-$kver" "$root/boot/"

  rm -rf "$img"
  mkdir -p "$img"
  cp "$kern/boot/vmlinuz-$kver" "$img/vmlinuz"
  pack_initramfs "$root" "$img/initramfs"
  echo "$key" > "$img/stamp"
  log "image built in $((SECONDS - t0)) s: $img ($(du -sh "$img/initramfs" | cut -f1) initramfs, ${#pkgs[@]} packages)"
  echo "$img"
}

main
