"""The report of an A/B experiment (``similar-users-ab-report NAME``, ``make ab-report EXPERIMENT=NAME``).

Reads the experiment's arms and weights from the file the service uses (``EXPERIMENTS_FILE``, else
``experiments.toml`` of the working directory; ``--experiments`` overrides), its
exposures and events from DynamoDB, and writes ``report.json``, ``report.md`` and ``ctr.png``
under ``--out-dir/NAME/``; prints the markdown.  A sample-ratio mismatch is printed on stderr
as well and makes the exit status 4, so a pipeline cannot miss it.

Exit status: 0 report written, 1 database failure, 2 bad input or usage (one line), 4 written
but the sample-ratio check failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from recommender.cli.common import BAD_INPUT, FAILED, OK

SRM_FAILED = 4
DEFAULT_OUT = Path("docs/ab")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="similar-users-ab-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="the experiment's name in the experiments file")
    parser.add_argument("--experiments", help="experiments file (default: the service's: EXPERIMENTS_FILE, else ./experiments.toml)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="reports go to OUT_DIR/NAME/ (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=0.01, help="significance level of the decision (default: %(default)s)")
    return parser.parse_args(argv)


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write(report, out_dir: Path) -> list[Path]:
    from recommender.experiments.report import chart, markdown

    folder = out_dir / report.experiment
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.json", folder / "report.md", folder / "ctr.png"]
    paths[0].write_text(json.dumps(_json_safe(report.to_dict()), indent=2) + "\n")
    paths[1].write_text(markdown(report) + "\n")
    chart(report, paths[2])
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from recommender.config import ApiSettings, SettingsError, load_settings
    from recommender.experiments import definitions, reading, report
    from recommender.experiments.exposures import writer_store
    from recommender.experiments.live import experiments_file

    try:
        settings = load_settings(ApiSettings)
        path = args.experiments or experiments_file(settings)
        if not path:
            raise ValueError(f"no experiments file: {settings.experiments_file} does not exist here; "
                             "set EXPERIMENTS_FILE or pass --experiments")
        experiment = definitions.load(path).get(args.experiment)
        if experiment is None:
            raise ValueError(f"experiments file {path}: no experiment named {args.experiment!r}")
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    try:
        exposures, events = reading.read(writer_store(settings), experiment.name)
    except (BotoCoreError, ClientError) as exc:
        print(f"error: reading the experiment's records from DynamoDB: {exc}", file=sys.stderr)
        return FAILED
    if exposures.empty:
        print(f"error: experiment {experiment.name!r} has no exposures in {settings.dynamodb_table}-ab-exposures yet",
              file=sys.stderr)
        return BAD_INPUT
    result = report.build(experiment, exposures, events, alpha=args.alpha)
    paths = write(result, args.out_dir)
    print(report.markdown(result))
    print(f"\nwrote {', '.join(map(str, paths))}")
    for warning in result.warnings:
        print(f"\n{'!' * 78}\n!!! {warning}\n{'!' * 78}", file=sys.stderr)
    return SRM_FAILED if result.sample_ratio["mismatch"] else OK


if __name__ == "__main__":
    sys.exit(main())
