"""The bundle's entry point: ``orch-mind`` with no arguments opens the app, like a desktop binary."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from app.cli import main

    if len(sys.argv) == 1:
        sys.argv.append("app")
    main()
