"""Export rate: a run's items as ImportTable's gzip DynamoDB-JSON parts, in items/s.

``python -m benchmarks.bench_export --data-dir DIR --rounds 3 --out benchmarks/results/export.json`` fits the TF-IDF
and k-NN models on ``DIR`` (their real items, with reasons, N=10) and exports them
(:class:`~recommender.store.export.ExportSink`) into a throw-away local folder from the
generator's own thread, as the driver writes them (a partition writes its own parts the same way,
where it runs).  Per round: items/s, the client's CPU per item, and per item: the size DynamoDB
bills (its 1 KB write units), the uncompressed DynamoDB JSON (what ImportTable is priced on) and
the gzip part bytes.  The load average is recorded with every figure.  A local folder, not S3: S3's upload rate is the
network's and the bucket's; this is what the generator itself costs per item.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

MODELS = ("tfidf_user_interest", "knn_collab_filtering_user_course_view")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from recommender.data.loader import load_tables
    from recommender.models.registry import create_model
    from recommender.store.codec import dynamo_items, import_lines, stored_size
    from recommender.store.export import read_part
    from recommender.store.export_location import ExportLocation
    from recommender.store.export_sink import ExportSink
    from recommender.store.items import build_items
    from recommender.topk import similar_users

    tables = load_tables(args.data_dir, ("user_interests", "user_course_views"))
    blocks = []
    for handle in MODELS:
        model = create_model(handle).fit(tables)
        answer = similar_users(model, 10)
        blocks.append(build_items(handle, answer, "20260101T000000Z-benchexp", "2026-01-01T00:00:00Z", model.explain(answer)))
    count = sum(len(b) for b in blocks)
    attributes = [a for b in blocks for a in dynamo_items(b)]
    sizes = {
        "dynamodb_item_bytes": round(statistics.fmean(stored_size(a) for a in attributes), 1),
        "import_json_bytes": round(statistics.fmean(len(line.encode()) for b in blocks for line in import_lines(b)), 1),
    }
    root = Path(tempfile.mkdtemp(prefix="bench-export-"))
    name = "1 process (generator's thread)"
    results: dict[str, list[dict]] = {}
    try:
        for round_ in range(args.rounds + 1):  # round 0 warms up (imports, first allocations) and is not kept
            folder = root / f"{round_}"
            sink = ExportSink(ExportLocation(str(folder)))
            try:
                sink.begin("r", MODELS)
                load, cpu, t0 = os.getloadavg()[0], time.process_time(), time.perf_counter()
                written = sum(sink.write(b.model_handle, b) for b in blocks)
                sink.commit({b.model_handle: len(b) for b in blocks})
                wall, used = time.perf_counter() - t0, time.process_time() - cpu
            finally:
                sink.finish()
            assert written == count
            gz = sum(p.stat().st_size for p in (folder / "data").rglob("*.json.gz"))
            figures = {"seconds": round(wall, 3), "items_per_second": round(written / wall),
                       "client_us_per_item": round(1e6 * used / written, 1), "gzip_bytes_per_item": round(gz / written, 1),
                       "loadavg_1m_start": round(load, 2)}
            if round_ == 1:  # the export holds exactly the items
                location = ExportLocation(str(folder))
                assert sum(1 for p in location.list("data") for _ in read_part(location.get(p))) == count
            if round_:
                results.setdefault(name, []).append(figures)
            print(f"round {round_}{' (warm-up)' if not round_ else ''}: {name}: {figures}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {name: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]} for name, rounds in results.items()}
    out = {"data_dir": str(args.data_dir), "items": count, "models": list(MODELS), "cpus": os.cpu_count(),
           "per_item": sizes, "median": summary, "rounds": results,
           "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    print(json.dumps({"items": count, "per_item": sizes, "median": summary}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
