# Shared by the two blktests target-control scripts (reference.sh, kernel.sh): what
# blktests asks with `config`, and the argument parsing of `setup` / `cleanup`
# (blktests' Documentation/running-tests.md, NVME_TARGET_CONTROL).
#
# The stage exports: BLKTESTS_TRADDR (the address on rxe0), BLKTESTS_TRSVCID (this
# target's port), BLKTESTS_STATE (a directory for this target's state and log),
# BLKTESTS_IMG_SIZE (bytes of the namespace).

# The host blktests connects as, and the subsystem it asks for (blktests' own defaults).
HOSTID=0f01fb42-9f7f-4856-b0b3-51e60b8de349
HOSTNQN=nqn.2014-08.org.nvmexpress:uuid:$HOSTID
SUBSYSNQN=blktests-subsystem-1
SUBSYS_UUID=91fdba0d-f87b-4c25-b80f-db7be1418b9e

: "${BLKTESTS_TRADDR:?}" "${BLKTESTS_TRSVCID:?}" "${BLKTESTS_STATE:?}" "${BLKTESTS_IMG_SIZE:?}"
mkdir -p "$BLKTESTS_STATE"
LOG=$BLKTESTS_STATE/control.log

# Answers `config --show-...`; returns 1 for a question it does not know.
answer_config() {
  case ${1:-} in
    --show-trtype) echo rdma ;;
    # "file": blktests then only truncates an image file of its own, which nothing uses
    --show-blkdev-type) echo file ;;
    --show-hostnqn) echo "$HOSTNQN" ;;
    --show-hostid) echo "$HOSTID" ;;
    --show-host-traddr) echo "$BLKTESTS_TRADDR" ;;
    --show-traddr) echo "$BLKTESTS_TRADDR" ;;
    --show-trsvid) echo "$BLKTESTS_TRSVCID" ;;
    --show-subsys-uuid) echo "$SUBSYS_UUID" ;;
    --show-subsysnqn) echo "$SUBSYSNQN" ;;
    *) echo "config: unknown question '${1:-}'" >&2; return 1 ;;
  esac
}

# Parses `setup` / `cleanup` options into NQN, UUID, HOST; the keys of authentication
# (--hostkey, --ctrlkey, --ctrkey) are refused: neither target here is set up for DH-HMAC-CHAP.
parse_args() {
  NQN=$SUBSYSNQN UUID=$SUBSYS_UUID HOST=$HOSTNQN
  while [ $# -gt 0 ]; do
    case $1 in
      --subsysnqn) NQN=$2; shift 2 ;;
      --subsys-uuid) UUID=$2; shift 2 ;;
      --hostnqn) HOST=$2; shift 2 ;;
      --hostkey|--ctrlkey|--ctrkey) echo "$1: authentication is not set up here" >&2; return 1 ;;
      # what blktests adds for its own connect: the transport, address and port are ours
      --transport|--traddr|--trsvcid) shift 2 ;;
      *) echo "unknown option '$1'" >&2; return 1 ;;
    esac
  done
}

log() { echo "[$(cut -d' ' -f1 /proc/uptime)s] $*" >> "$LOG"; }

# The command line of a control script: `config --show-...`, `setup OPTIONS`, `cleanup
# OPTIONS`; the script defines target_setup and target_cleanup.
dispatch() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    config) answer_config "$@" ;;
    setup) parse_args "$@"; log "setup $*"; target_setup ;;
    cleanup) parse_args "$@"; log "cleanup $*"; target_cleanup ;;
    *) echo "usage: $0 config --show-...|setup OPTIONS|cleanup --subsysnqn NQN" >&2; return 2 ;;
  esac
}
