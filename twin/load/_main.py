"""Entry point of the processes `twin load` starts (not imported by the package, so `-m`
runs it cleanly): `python -m twin.load._main hub ...` or `... worker SPEC.json`."""

from __future__ import annotations

import sys


def main() -> None:
    role, argv = sys.argv[1], sys.argv[2:]
    if role == "hub":
        from ._hubproc import main as hub_main

        hub_main(argv)
    elif role == "worker":
        from ._worker import main as worker_main

        worker_main(argv)
    else:
        raise SystemExit(f"unknown role {role!r}: hub or worker")


if __name__ == "__main__":
    main()
