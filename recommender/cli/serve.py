"""Start the similar-users API with Flask's own server (development and quick checks).

Production: gunicorn (``make serve``, which runs ``--check`` first).  Debug mode only with
``--debug``; it must never face real traffic.

Binding an address other machines can reach while ``API_KEYS`` is empty is refused: the service
would answer anyone.  Loopback (the default) needs no key.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

from recommender.cli.common import BAD_INPUT
from recommender.config import ApiSettings, SettingsError, load_settings


def public_without_keys(host: str, settings: ApiSettings) -> str | None:
    """The error when ``host`` faces other machines and no API key guards the service, else None."""
    if settings.api_keys:
        return None
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to anything, so it counts as public
    return (f"HOST={host} is reachable from other machines but API_KEYS is empty: set API_KEYS, "
            f"or bind 127.0.0.1 (the default)")


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
