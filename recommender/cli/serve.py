"""Start the similar-users API with Flask's own server (development and quick checks).

Production: gunicorn (``make serve``, which runs ``--check`` first).  Debug mode only with
``--debug``; it must never face real traffic.

Binding an address other machines can reach while ``API_KEYS`` is empty is refused: the service
would answer anyone.  Loopback (the default) needs no key; ``ALLOW_PUBLIC_WITHOUT_KEYS=true``
says it is intended.  gunicorn's master applies the same rule
(:func:`recommender.config.public_without_keys`) to its ``--bind`` addresses.
"""

from __future__ import annotations

import argparse
import sys

from recommender.cli.common import BAD_INPUT
from recommender.config import ApiSettings, SettingsError, load_settings, public_without_keys


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
    parser.add_argument("--check", action="store_true",
                        help="only check the bind address against API_KEYS and exit (make serve runs this)")
    args = parser.parse_args(argv)
    if (problem := public_without_keys(args.host, settings)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return BAD_INPUT
    if args.check:
        return 0

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
