"""Command line: ``python -m recommender.evaluate [--data-dir data] [--out FILE] [--tune]``.

Without ``--tune``: the evaluation (both hold-out tasks, baselines, planted truth, agreement);
writes ``--out`` (JSON), the markdown table next to it (same name, ``.md``) and the charts
(``images/eval_*.png``), and prints the markdown.  With ``--tune``: the validation-split tuning;
writes ``tuning.json`` and ``tuning.md`` in the folder of ``--out`` and prints the markdown.

Exit status: 0 success; 2 bad input or usage (one line); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from recommender.data.loader import DataValidationError
from recommender.models.registry import MODEL_HANDLES

log = logging.getLogger("recommender.evaluate")

DEFAULT_OUT = Path("docs/evaluation/results.json")
DEFAULT_IMAGES = Path("images")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m recommender.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="folder with the CSVs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="results JSON; markdown next to it (default: %(default)s)")
    parser.add_argument("--images-dir", type=Path, default=DEFAULT_IMAGES, help="charts folder (default: %(default)s)")
    parser.add_argument("--no-charts", action="store_true", help="do not draw the PNG charts")
    parser.add_argument("--tune", action="store_true", help="tune on the validation split instead of evaluating")
    parser.add_argument("--models", default=",".join(MODEL_HANDLES),
                        help="comma-separated model handles (default: all)")
    parser.add_argument("--top-n", type=int, default=10, help="neighbours per user (default: %(default)s)")
    parser.add_argument("--k", type=int, default=10, help="recommended items per user (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7,
                        help="hold-out tie-breaks and random baseline (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.models = tuple(m.strip().lower() for m in args.models.split(",") if m.strip())
    unknown = [m for m in args.models if m not in MODEL_HANDLES]
    if unknown or not args.models:
        which = unknown[0] if unknown else "(none given)"
        parser.error(f"unknown model {which}; known models: {', '.join(MODEL_HANDLES)}")
    if not 1 <= args.top_n <= 100 or not 1 <= args.k <= 100:
        parser.error("--top-n and --k must be between 1 and 100")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from recommender.data.loader import load_tables
    from recommender.evaluation import report, runner, tuning

    config = runner.EvalConfig(
        top_n=args.top_n, k=args.k, seed=args.seed, models=args.models, progress=not args.no_progress
    )
    started = time.perf_counter()
    try:
        tables = load_tables(args.data_dir, runner.TABLES_USED)
        truth = runner.load_truth(args.data_dir)
        if args.tune:
            figures = tuning.tune(tables, truth, config)
            json_path, markdown = args.out.parent / "tuning.json", report.tuning_markdown(figures)
        else:
            figures = runner.evaluate(tables, truth, config)
            json_path, markdown = args.out, report.results_markdown(figures)
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    report.write_json(figures, json_path)
    json_path.with_suffix(".md").write_text(markdown + "\n")
    written = [json_path, json_path.with_suffix(".md")]
    if not args.tune and not args.no_charts:
        written += report.charts(figures, args.images_dir)
    print(markdown)
    log.info("wrote %s in %.1fs", ", ".join(map(str, written)), time.perf_counter() - started)
    return 0
