#!/usr/bin/env python
"""Batch generator (``similar-users-generate``): :mod:`recommender.cli.generate`.

``run_generator.py --help`` lists the options and the exit codes (``recommender.cli.common``).
"""

from recommender.cli.generate import main, run  # noqa: F401 - main: for callers in the same process

if __name__ == "__main__":
    run()
