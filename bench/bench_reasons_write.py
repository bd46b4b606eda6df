"""Write rate with and without reasons: the same items, written alternately into DynamoDB Local.

``python -m bench.bench_reasons_write --data-dir data --rounds 3``: fits the TF-IDF and k-NN
models, builds their items with and without reasons, and writes them in alternating rounds
through the generator's own write path (its batch client, ``WRITE_THREADS`` threads, batches of
25, items straight from the arrays) into one fresh run table, so that a busy machine slows both
variants alike.  Prints items/s per round, the median per variant, and
the size of the largest item (DynamoDB's size: attribute names plus values).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from recommender.config import GeneratorSettings, load_settings
from recommender.data.loader import load_tables
from recommender.models.registry import create_model
from recommender.store.dynamo import DynamoStore
from recommender.store.items import build_items
from recommender.store.writer import BatchWriter

MODELS = ("tfidf_user_interest", "knn_collab_filtering_user_course_view")


def item_size(attributes: dict) -> int:
    """DynamoDB's item size, approximately: attribute names plus the text of every value."""
    return sum(len(name) + len(json.dumps(value, separators=(",", ":"))) for name, value in attributes.items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    tables = load_tables(args.data_dir, ("user_interests", "user_course_views"))
    variants: dict[str, list] = {"lists only": [], "with reasons": []}
    for handle in MODELS:
        model = create_model(handle).fit(tables)
        answer = model.similar_users(10)
        variants["lists only"].append(build_items(handle, answer, "bench", "2026-01-01T00:00:00Z"))
        variants["with reasons"].append(build_items(handle, answer, "bench", "2026-01-01T00:00:00Z", model.explain(answer)))
    settings = load_settings(GeneratorSettings)
    store = DynamoStore.for_generator(settings)
    table = store.create_run_table(time.strftime("%Y%m%dT%H%M%SZ") + "-reasonsb")
    writer = BatchWriter(store.client_spec.batch_client(), threads=settings.write_threads)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_ in range(args.rounds):
            for name, items in variants.items():
                started = time.perf_counter()
                count = sum(writer.write(table, block) for block in items)
                rates[name].append(count / (time.perf_counter() - started))
                print(f"round {round_ + 1}: {name}: {count:,} items, {rates[name][-1]:,.0f} items/s", flush=True)
    finally:
        store.drop_table(table)
    for name, items in variants.items():
        largest = max(item_size(i.to_dynamo()) for block in items for i in block)
        print(f"{name}: median {statistics.median(rates[name]):,.0f} items/s, largest item {largest:,} bytes")
    drop = 1 - statistics.median(rates["with reasons"]) / statistics.median(rates["lists only"])
    print(f"write-rate change with reasons: {-drop:+.1%}")


if __name__ == "__main__":
    main()
