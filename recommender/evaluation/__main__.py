"""``python -m recommender.evaluation`` (same as ``python -m recommender.evaluate``)."""

import sys

from recommender.evaluation.cli import main

sys.exit(main())
