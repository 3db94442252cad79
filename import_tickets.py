"""The earlier loader's command line, kept so its scheduled task runs fleettickets unchanged.

`python import_tickets.py --from-bucket --apply` is what the deployed cron
line calls; each old flag maps to a fleettickets command, printed as a
one-line notice on stderr, so switching loaders is a redeploy and the task
can be changed to call fleettickets directly later.
"""

from __future__ import annotations

import argparse
import sys

from fleettickets.cli import main as fleettickets_main

# Old flag -> fleettickets command, in the order the old loader ran them.
ACTIONS = (
    ("from_bucket", ["ingest"]),
    ("geocode_clusters", ["geocode-clusters"]),
    ("geocode_locations", ["geocode-locations"]),
    ("capture_history", ["capture-history"]),
)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="import_tickets.py",
        description="The earlier loader's flags, mapped to fleettickets commands.",
    )
    parser.add_argument("--from-bucket", action="store_true", help="fleettickets ingest")
    parser.add_argument(
        "--inc-csv", metavar="FILE", action="append", default=[], help="fleettickets ingest --inc-csv FILE"
    )
    parser.add_argument("--apply", action="store_true", help="write (default: dry run)")
    parser.add_argument("--geocode-clusters", action="store_true", help="fleettickets geocode-clusters")
    parser.add_argument("--geocode-locations", action="store_true", help="fleettickets geocode-locations")
    parser.add_argument("--capture-history", action="store_true", help="fleettickets capture-history")
    return parser.parse_args(argv)


def commands(args: argparse.Namespace) -> list[list[str]]:
    """The fleettickets command lines the old flags stand for; no action flag means the bucket."""
    if args.inc_csv and args.from_bucket:
        raise SystemExit("import_tickets.py: --inc-csv and --from-bucket are alternatives")
    apply = ["--apply"] if args.apply else []
    chosen = []
    for flag, command in ACTIONS:
        if getattr(args, flag) or (flag == "from_bucket" and args.inc_csv):
            files = [part for path in args.inc_csv for part in ("--inc-csv", path)] if flag == "from_bucket" else []
            chosen.append([*command, *apply, *files])
    return chosen or [["ingest", *apply]]


def run(argv: list[str]) -> int:
    for command in commands(parse(argv)):
        print(
            f"import_tickets.py is kept for the old schedule: running `fleettickets {' '.join(command)}`",
            file=sys.stderr,
        )
        try:
            fleettickets_main(command)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
            if status != 0:
                return status
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
