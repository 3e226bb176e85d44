#!/bin/bash
# blktests' NVME_TARGET_CONTROL for the kernel's nvmet-rdma on rxe0, set up through configfs
# as an external target: `setup` creates the subsystem blktests asks for (namespace 1 on a
# loop device over a file of BLKTESTS_IMG_SIZE bytes, as blktests' own "device" targets —
# 512-byte blocks; its UUID the one blktests passes; the host it names allowed) on port
# BLKTESTS_PORTID (default 90); `cleanup` removes it. What an earlier test left of the same
# subsystem (the configfs-only tests edit it themselves) is removed before a setup.
# See common.sh.
set -euo pipefail
source "$(dirname "$0")/common.sh"
CFS=/sys/kernel/config/nvmet
PORT=$CFS/ports/${BLKTESTS_PORTID:-90}
IMG=$BLKTESTS_STATE/ns1.img

setup() {
  modprobe nvmet
  modprobe nvmet-rdma
  local s=$CFS/subsystems/$NQN loop
  truncate -s 0 "$IMG"
  truncate -s "$BLKTESTS_IMG_SIZE" "$IMG"
  loop=$(losetup -f --show "$IMG")
  mkdir "$s"
  echo 0 > "$s/attr_allow_any_host"
  [ -d "$CFS/hosts/$HOST" ] || mkdir "$CFS/hosts/$HOST"
  ln -s "$CFS/hosts/$HOST" "$s/allowed_hosts/$HOST"
  mkdir "$s/namespaces/1"
  echo -n "$loop" > "$s/namespaces/1/device_path"
  echo "$UUID" > "$s/namespaces/1/device_uuid"
  echo 1 > "$s/namespaces/1/enable"
  if [ ! -d "$PORT" ]; then
    mkdir "$PORT"
    echo rdma > "$PORT/addr_trtype"
    echo ipv4 > "$PORT/addr_adrfam"
    echo "$BLKTESTS_TRADDR" > "$PORT/addr_traddr"
    echo "$BLKTESTS_TRSVCID" > "$PORT/addr_trsvcid"
  fi
  ln -s "$s" "$PORT/subsystems/$NQN"
  log "serving $NQN (uuid $UUID, host $HOST) on $BLKTESTS_TRADDR:$BLKTESTS_TRSVCID ($loop)"
}

# Removes subsystem NQN wherever it is (every port's link, every namespace, every allowed
# host), the port when it serves nothing, the host entry when nothing allows it, and the
# loop device and file. Quiet about what is not there.
cleanup() {
  local s=$CFS/subsystems/$NQN p n dev
  for p in "$CFS"/ports/*/subsystems/"$NQN"; do [ ! -L "$p" ] || rm -f "$p"; done
  if [ -d "$s" ]; then
    for n in "$s"/namespaces/*/; do
      [ -d "$n" ] || continue
      [ ! -f "$n/enable" ] || echo 0 > "$n/enable"
      rmdir "$n"
    done
    for p in "$s"/allowed_hosts/*; do [ ! -L "$p" ] || rm -f "$p"; done
    rmdir "$s"
  fi
  # a port an earlier test gave more (an ANA group, a referral) stays, for the next setup
  if [ -d "$PORT" ] && [ -z "$(ls "$PORT/subsystems")" ]; then
    rmdir "$PORT" 2>/dev/null || log "port $PORT kept: $(ls "$PORT"/* | tr '\n' ' ')"
  fi
  if [ -d "$CFS/hosts/$HOST" ]; then rmdir "$CFS/hosts/$HOST" 2>/dev/null || true; fi
  for dev in $(losetup -j "$IMG" -O NAME -n 2>/dev/null); do losetup -d "$dev"; done
  rm -f "$IMG"
}

target_setup() { cleanup; setup; }
target_cleanup() { cleanup; }
dispatch "$@"
