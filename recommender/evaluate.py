"""Offline evaluation entry point: ``python -m recommender.evaluate --help``.

The harness lives in :mod:`recommender.evaluation`; this module keeps the short command name.
"""

from recommender.evaluation.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
