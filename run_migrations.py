"""Apply the schema migrations: the same code as `fleettickets migrate`."""

import sys

from fleettickets.cli import main

if __name__ == "__main__":
    main(["migrate", *sys.argv[1:]])
