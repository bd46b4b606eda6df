"""What every command line shares: the exit codes, the ``error:`` line, the batch commands' settings
and the ``--models`` argument.

The exit codes are a contract with schedulers (systemd's ``SuccessExitStatus``, cron wrappers,
Kubernetes job policies), so they are written once here; the generator's ``--help``, the table in
``docs/operations.md`` and the scheduling examples are checked against :data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from recommender.config import GeneratorSettings, SettingsError, load_settings
from recommender.models.registry import MODEL_HANDLES

OK, FAILED, BAD_INPUT, LOCKED, STOPPED_AFTER_PUBLISH, INTERRUPTED, TERMINATED = 0, 1, 2, 3, 4, 130, 143

EXIT_CODES: dict[int, str] = {
    OK: "success: the run is published",
    FAILED: "failed: database, S3 or model failure (after retries), or `--search ann` under MIN_RECALL; the previous run stays published",
    BAD_INPUT: "bad input or usage: one line names the setting, file, column, row or model; nothing is published",
    LOCKED: "lock held: another generator run holds the lock; nothing was done",
    STOPPED_AFTER_PUBLISH: "stopped after publishing (SIGINT or SIGTERM after the pointer flip): the new run is published and serves",
    INTERRUPTED: "interrupted (SIGINT, Ctrl-C) before the pointer flip: the run is marked failed, its table dropped, the lock released",
    TERMINATED: "terminated (SIGTERM: systemd stop, timeout, Kubernetes) before the pointer flip: same clean-up as SIGINT",
}


def exit_codes_epilog() -> str:
    return "exit status:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())


def fail(code: int, message: str) -> int:
    """Print the one ``error:`` line of a command that stops, and return its exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def batch_settings() -> GeneratorSettings | int:
    """The generator's settings (environment over ``.env``) with the batch commands' log format, or
    the exit code after the ``error:`` line naming the bad setting (the generator and the loader)."""
    try:
        settings = load_settings(GeneratorSettings)
    except SettingsError as exc:
        return fail(BAD_INPUT, str(exc))
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


def parse_models(text: str) -> tuple[str, ...]:
    """``a,b`` → registered handles (case-insensitive); argparse turns the ValueError into a usage error."""
    models = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    unknown = [m for m in models if m not in MODEL_HANDLES]
    if unknown or not models:
        raise argparse.ArgumentTypeError(
            f"unknown model {unknown[0] if unknown else '(none given)'}; known models: {', '.join(MODEL_HANDLES)}")
    return models


def add_models_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=parse_models, default=MODEL_HANDLES, metavar="HANDLES",
                        help=f"comma-separated model handles (default: all: {','.join(MODEL_HANDLES)})")


def top_n(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 100, not {text!r}")
    return value
