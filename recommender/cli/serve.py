"""Start the similar-users API with Flask's own server (development and quick checks).

Production: gunicorn (``make serve``).  Debug mode only with ``--debug``; it must never face
real traffic.
"""

from __future__ import annotations

import argparse
import sys

from recommender.cli.common import BAD_INPUT
from recommender.config import ApiSettings, SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(ApiSettings)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    parser = argparse.ArgumentParser(prog="run_server.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=settings.host, help="bind address (default: %(default)s, env HOST)")
    parser.add_argument("--port", type=int, default=settings.port, help="port (default: %(default)s, env PORT)")
    parser.add_argument("--debug", action="store_true", help="Flask debug mode (development only)")
    args = parser.parse_args(argv)

    from recommender.api import create_app
    from recommender.experiments.definitions import ExperimentsFileError

    try:
        app = create_app(settings)
    except ExperimentsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
