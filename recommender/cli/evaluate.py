"""Offline evaluation (``similar-users-evaluate [--data-dir data] [--out FILE] [--tune]``, ``make evaluate``).

Without ``--tune``: the evaluation (both hold-out tasks, baselines, planted truth, agreement);
writes ``--out`` (JSON), the markdown table next to it (same name, ``.md``) and the charts
(``docs/images/eval_*.png``), and prints the markdown.  With ``--tune``: the validation-split tuning;
writes ``tuning.json`` and ``tuning.md`` in the folder of ``--out`` and prints the markdown.

Exit status as the generator's (:data:`recommender.cli.common.EXIT_CODES`): 0, 2 bad input or
usage (one line), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from recommender.cli.common import BAD_INPUT, INTERRUPTED, OK, add_models_argument, top_n
from recommender.data.loader import DataValidationError

log = logging.getLogger("recommender.evaluate")

DEFAULT_OUT = Path("docs/evaluation/results.json")
DEFAULT_IMAGES = Path("docs/images")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="similar-users-evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="folder with the CSVs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="results JSON; markdown next to it (default: %(default)s)")
    parser.add_argument("--images-dir", type=Path, default=DEFAULT_IMAGES, help="charts folder (default: %(default)s)")
    parser.add_argument("--no-charts", action="store_true", help="do not draw the PNG charts")
    parser.add_argument("--tune", action="store_true", help="tune on the validation split instead of evaluating")
    add_models_argument(parser)
    parser.add_argument("--top-n", type=top_n, default=10, help="neighbours per user, 1..100 (default: %(default)s)")
    parser.add_argument("--k", type=top_n, default=10, help="recommended items per user, 1..100 (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7,
                        help="hold-out tie-breaks and random baseline (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from recommender.config import load_env_file

    load_env_file()  # .env of the working directory (S3 credentials of DATA_DIR); the environment wins
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from recommender.data.loader import load_tables
    from recommender.evaluation import report, runner, tuning
    from recommender.evaluation.task_split import EvalConfig

    config = EvalConfig(
        top_n=args.top_n, k=args.k, seed=args.seed, models=args.models, progress=not args.no_progress
    )
    started = time.perf_counter()
    try:
        tables = load_tables(args.data_dir, runner.tables_needed(args.models))
        truth = runner.load_truth(args.data_dir)
        if args.tune:
            figures = tuning.tune(tables, truth, config)
            json_path, markdown = args.out.parent / "tuning.json", report.tuning_markdown(figures)
        else:
            figures = runner.evaluate(tables, truth, config)
            json_path, markdown = args.out, report.results_markdown(figures)
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return INTERRUPTED
    report.write_json(figures, json_path)
    json_path.with_suffix(".md").write_text(markdown + "\n")
    written = [json_path, json_path.with_suffix(".md")]
    if not args.tune and not args.no_charts:
        written += report.charts(figures, args.images_dir)
    print(markdown)
    log.info("wrote %s in %.1fs", ", ".join(map(str, written)), time.perf_counter() - started)
    return OK


if __name__ == "__main__":
    sys.exit(main())
