#!/bin/bash
# blktests' NVME_TARGET_CONTROL for nvmf-reference-target on rxe0: `setup` writes a
# configuration with the subsystem blktests asks for (namespace 1 of BLKTESTS_IMG_SIZE bytes
# in RAM, 512-byte blocks, its UUID the one blktests passes, the host it names allowed) and
# (re)starts the target with it; `cleanup` stops it. The target's configuration is read at
# start, so one subsystem is served at a time (a port serves one subsystem).
# Also needs BLKTESTS_BIN (the nvmf-reference-target binary). See common.sh.
set -euo pipefail
source "$(dirname "$0")/common.sh"
: "${BLKTESTS_BIN:?}"
PID=$BLKTESTS_STATE/target.pid

stop() {
  [ -f "$PID" ] || return 0
  local pid n=0
  pid=$(cat "$PID")
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    n=$((n + 1))
    [ $n -lt 100 ] || { kill -9 "$pid" 2>/dev/null || true; log "target $pid killed"; break; }
    sleep 0.1
  done
  rm -f "$PID"
}

start() {
  local size=$((BLKTESTS_IMG_SIZE))
  cat > "$BLKTESTS_STATE/target.toml" <<TOML
profile = "full"

[[port]]
addr = "$BLKTESTS_TRADDR:$BLKTESTS_TRSVCID"
subsystem = "$NQN"

[[subsystem]]
nqn = "$NQN"
hosts = ["$HOST"]
queue_depth = 128

[[subsystem.namespace]]
nsid = 1
size = $size
lba_format = "512"
uuid = "$UUID"
TOML
  "$BLKTESTS_BIN" --config "$BLKTESTS_STATE/target.toml" --fabric verbs \
    --duration 36000 >> "$BLKTESTS_STATE/target.log" 2>&1 &
  echo $! > "$PID"
  # serving once its discovery controller answers (at most 60 s)
  local n=0
  until timeout 10 nvme discover -t rdma -a "$BLKTESTS_TRADDR" -s "$BLKTESTS_TRSVCID" \
          --hostnqn "$HOST" 2>/dev/null | grep -q "subnqn: *$NQN"; do
    n=$((n + 1))
    kill -0 "$(cat "$PID")" 2>/dev/null || { log "the target exited at start"; return 1; }
    [ $n -lt 60 ] || { log "the target did not answer discovery in 60 s"; return 1; }
    sleep 1
  done
  log "serving $NQN (uuid $UUID, host $HOST) on $BLKTESTS_TRADDR:$BLKTESTS_TRSVCID"
}

target_setup() { stop; start; }
target_cleanup() { stop; }
dispatch "$@"
