#!/usr/bin/env python
"""Start the similar-users API with Flask's own server (development and quick checks).

Production: ``gunicorn -w 2 -b 0.0.0.0:5000 'recommender.api:create_app()'`` (``make serve``).
Debug mode only with ``--debug``; it must never face real traffic.
"""

from __future__ import annotations

import argparse
import sys

from recommender.api import create_app
from recommender.config import load_settings


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=settings.host, help="bind address (default: %(default)s, env HOST)")
    parser.add_argument("--port", type=int, default=settings.port, help="port (default: %(default)s, env PORT)")
    parser.add_argument("--debug", action="store_true", help="Flask debug mode (development only)")
    args = parser.parse_args(argv)
    app = create_app(settings)
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
