#!/usr/bin/env python3
"""The soft-RoCE VM's fault broker: injects real faults into QEMU's NVMe controller when the
guest asks for them (issue 15).

    fault-broker.py DIR MONITOR_SOCKET [MEDIA_SECTOR]

The guest writes a request file DIR/requests/N (its text: one fault name) through the 9p
results share; the broker runs the QEMU monitor (HMP) commands for that fault and writes
DIR/acks/N: "ok" and the monitor's answer, or "error: ..." for a fault it does not know.
It runs until killed (run-vm.sh --broker starts it beside QEMU and stops it after).

Faults (docs/softroce.md, stage v):
  stall      blkdebug breakpoint on reads: the next read gets no completion, CSTS stays
             ready (breakpoints are one-shot). Reads only: QEMU 7.2's monitor hung
             resuming a write held the same way (measured)
  resume     lifts the breakpoint: the stalled command completes, a breakpoint not
             reached yet is removed; and lifts slow
  slow       I/O throttling on the controller's drive (block_set_io_throttle, 50 IOPS):
             every command waits its turn, about 20 ms apart
  pci-error  AER uncorrectable internal error on the controller's root port (QEMU's NVMe has
             no AER capability of its own): the guest's error recovery resets the link
  unplug     device_del of the controller: VFIO's request eventfd fires
  media-error  no monitor command: blkdebug's rules are fixed when the drive opens, so the
             broker answers where the one it was started with is: "ok sector=MEDIA_SECTOR"
             (512-byte sectors whose reads fail with EIO: the controller answers 0x281)
  replug     device_add of the controller unplugged: the same root port, serial and
             backing store; the guest's PCIe hotplug finds it
"""
import os
import socket
import sys
import time

FAULTS = {
    "stall": ['qemu-io raw0 "break read_aio nvmfstall"'],
    # a breakpoint not reached yet is removed too (it would hold the next case's read)
    "resume": [
        'qemu-io raw0 "resume nvmfstall"',
        'qemu-io raw0 "remove_break nvmfstall"',
        "block_set_io_throttle nvme0 0 0 0 0 0 0",
    ],
    # I/O throttling on the controller's drive: 50 commands a second, each waits its turn
    "slow": ["block_set_io_throttle nvme0 0 0 0 50 0 0"],
    "pci-error": ["pcie_aer_inject_error rp1 INTN"],
    "unplug": ["device_del nvme0"],
    # as run-vm.sh --nvme plugs it at boot: same id, serial, root port and block node
    # (share-rw: QEMU keeps the unplugged device's hold on the node for a while)
    "replug": ["device_add nvme,id=nvme0,serial=nvmf-conform,drive=raw0,bus=rp1,share-rw=on"],
}


def hmp(sock_path, command, bound=10.0):
    """Runs one HMP command on the monitor socket; returns what the monitor printed."""
    deadline = time.time() + bound
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(bound)
        s.connect(sock_path)
        buf = b""
        while b"(qemu)" not in buf and time.time() < deadline:
            buf += s.recv(4096)
        s.sendall((command + "\n").encode())
        out = b""
        while out.count(b"(qemu)") < 1 and time.time() < deadline:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    text = out.decode(errors="replace").replace("\r", "")
    lines = [l for l in text.split("\n") if l and not l.startswith("(qemu)") and command not in l]
    return " / ".join(lines)


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    base, sock_path = sys.argv[1], sys.argv[2]
    media_sector = sys.argv[3] if len(sys.argv) == 4 else None
    requests, acks = os.path.join(base, "requests"), os.path.join(base, "acks")
    os.makedirs(requests, exist_ok=True)
    os.makedirs(acks, exist_ok=True)
    done = set()
    while True:
        for name in sorted(os.listdir(requests)):
            if name in done or name.startswith("."):
                continue  # answered, or still being written (the guest renames it in place)
            path = os.path.join(requests, name)
            with open(path) as f:
                fault = f.read().strip()
            done.add(name)
            if fault == "media-error":
                ack = f"ok sector={media_sector}" if media_sector else "error: no media error configured"
            elif fault in FAULTS:
                try:
                    answers = [hmp(sock_path, c) for c in FAULTS[fault]]
                    ack = "ok " + " | ".join(a for a in answers if a)
                except OSError as e:
                    ack = f"error: monitor: {e}"
            else:
                known = ", ".join([*FAULTS, "media-error"])
                ack = f"error: unknown fault {fault!r} (known: {known})"
            print(f"fault-broker: {name} {fault}: {ack}", flush=True)
            tmp = os.path.join(acks, name + ".tmp")
            with open(tmp, "w") as f:
                f.write(ack + "\n")
            os.rename(tmp, os.path.join(acks, name))
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
