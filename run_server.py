#!/usr/bin/env python
"""The similar-users API on Flask's development server (``similar-users-serve``): :mod:`recommender.cli.serve`.

Production: ``make serve`` (gunicorn).
"""

import sys

from recommender.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())
