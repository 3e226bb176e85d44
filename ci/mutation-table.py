#!/usr/bin/env python3
"""Per-file table of a cargo-mutants run (docs/mutation.md), from its outcomes.json.

    python3 ci/mutation-table.py target/mutants/mutants.out/outcomes.json [LATER.json ...]

With several files (say a run and its `--iterate` re-run), a mutant's outcome is the one
in the last file that has it. Mutants are named with their line numbers, so when the code
moved between the runs, give the tree's current list (`cargo mutants --list > LIST`) with
`--only LIST`: mutants not in it are left out.

    python3 ci/mutation-table.py --only LIST first/outcomes.json iterate/outcomes.json

Prints a Markdown table: for each mutated file, the mutants caught, missed, unviable (did
not build) and timed out, and the share of viable mutants (all but the unviable) that were
caught, timeouts not counted as caught; then the missed mutants one per line.
"""
import collections
import json
import signal
import sys

KINDS = ("CaughtMutant", "MissedMutant", "Unviable", "Timeout")


def main(paths, only=None):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` is not an error
    outcomes = {}
    for path in paths:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f"mutation-table: cannot read {path}: {e}")
        for o in data["outcomes"]:
            scenario = o["scenario"]
            mutant = scenario.get("Mutant") if isinstance(scenario, dict) else None
            if mutant is None:
                continue  # the baseline
            if only is None or mutant["name"] in only:
                outcomes[mutant["name"]] = (mutant["file"], o["summary"])
    per_file = collections.defaultdict(collections.Counter)
    missed = []
    for name, (file, kind) in outcomes.items():
        per_file[file][kind] += 1
        if kind == "MissedMutant":
            missed.append(name)
    print("| file | mutants | caught | missed | unviable | timeout | caught of viable |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    total = collections.Counter()
    for file in sorted(per_file):
        c = per_file[file]
        total.update(c)
        print(row(file, c))
    print(row("**all**", total))
    if missed:
        print("\nMissed:\n")
        for name in missed:
            print(f"- `{name}`")


def row(name, c):
    caught, missed, unviable, timeout = (c[k] for k in KINDS)
    viable = caught + missed + timeout
    share = f"{100 * caught / viable:.1f} %" if viable else "-"
    n = sum(c.values())
    return f"| {name} | {n} | {caught} | {missed} | {unviable} | {timeout} | {share} |"


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if args else 2)
    only = None
    if args[0] == "--only":
        if len(args) < 3:
            sys.exit("mutation-table: --only LIST needs a list and at least one outcomes file")
        try:
            with open(args[1]) as f:
                only = {line.strip() for line in f if line.strip()}
        except OSError as e:
            sys.exit(f"mutation-table: cannot read {args[1]}: {e}")
        args = args[2:]
    main(args, only)
