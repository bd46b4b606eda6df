#!/usr/bin/env python
"""Batch generator (``similar-users-generate``): :mod:`recommender.cli.generate`.

``run_generator.py --help`` lists the options and the exit codes (``recommender.cli.common``).
"""

import sys

from recommender.cli.generate import main

if __name__ == "__main__":
    sys.exit(main())
