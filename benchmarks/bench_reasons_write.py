"""Write rate with and without reasons: the same items, written alternately into DynamoDB Local.

``python -m benchmarks.bench_reasons_write --data-dir data --rounds 3``: fits the TF-IDF and k-NN
models, builds their items with and without reasons, and writes them in alternating rounds
through the generator's own write path (its batch client, ``WRITE_THREADS`` threads, batches of
25, items straight from the arrays) into one fresh run table, in alternating order (ABBA), so
that a busy machine slows both variants alike.  Prints items/s per round, the median per variant,
the change with reasons per round and its median (paired: robust to the load drifting between rounds), this process's CPU per item
(building and sending), DynamoDB Local's CPU per item with ``--server-pid`` (its /proc counters:
the whole server, so other clients of a shared one count too), the size of the largest item
(:func:`~recommender.store.codec.stored_size`), and what building the attribute values costs
alone (best of 5), with the reasons compressed (zlib into a ``B`` attribute) as the alternative
that was measured and not taken.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import zlib

from recommender.config import GeneratorSettings, load_settings
from recommender.data.loader import load_tables
from recommender.models.registry import create_model
from recommender.store.dynamo import DynamoStore
from recommender.store.codec import dynamo_items, stored_size
from recommender.store.items import ItemBlock, build_items
from recommender.store.writer import BatchWriter
from recommender.topk import similar_users

MODELS = ("tfidf_user_interest", "knn_collab_filtering_user_course_view")


def server_cpu(pid: int | None) -> float:
    """CPU seconds the process has used (user + system), 0 without a pid."""
    if pid is None:
        return 0.0
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_cost(blocks: list[ItemBlock], compress: bool = False) -> float:
    """Client CPU µs per item to build the attribute values (best of 5); ``compress``: reasons through zlib."""
    best = float("inf")
    for _ in range(5):
        started, count = time.process_time(), 0
        for block in blocks:
            for attributes in dynamo_items(block):
                if compress and "reasons" in attributes:
                    attributes["reasons"] = {"B": zlib.compress(attributes["reasons"]["S"].encode(), 6, -11)}
                count += 1
        best = min(best, time.process_time() - started)
    return 1e6 * best / count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-pid", type=int, help="DynamoDB Local's process id: report its CPU per item too")
    args = parser.parse_args(argv)
    tables = load_tables(args.data_dir, ("user_interests", "user_course_views"))
    variants: dict[str, list] = {"lists only": [], "with reasons": []}
    for handle in MODELS:
        model = create_model(handle).fit(tables)
        answer = similar_users(model, 10)
        variants["lists only"].append(build_items(handle, answer, "bench", "2026-01-01T00:00:00Z"))
        variants["with reasons"].append(build_items(handle, answer, "bench", "2026-01-01T00:00:00Z", model.explain(answer)))
    settings = load_settings(GeneratorSettings)
    store = DynamoStore.for_generator(settings)
    table = store.create_run_table(time.strftime("%Y%m%dT%H%M%SZ") + "-reasonsb")
    writer = BatchWriter(store.client_spec.batch_client(), threads=settings.write_threads)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    client: dict[str, list[float]] = {name: [] for name in variants}
    server: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for round_ in range(args.rounds):
            for name, items in sorted(variants.items(), reverse=round_ % 2 == 1):
                started, cpu, db = time.perf_counter(), time.process_time(), server_cpu(args.server_pid)
                count = sum(writer.write(table, block) for block in items)
                rates[name].append(count / (time.perf_counter() - started))
                client[name].append(1e6 * (time.process_time() - cpu) / count)
                server[name].append(1e6 * (server_cpu(args.server_pid) - db) / count)
                db_text = f", DynamoDB Local {server[name][-1]:.0f} µs/item" if args.server_pid else ""
                print(f"round {round_ + 1}: {name}: {count:,} items, {rates[name][-1]:,.0f} items/s, "
                      f"client {client[name][-1]:.0f} µs/item{db_text}", flush=True)
    finally:
        store.drop_table(table)
    median = statistics.median
    for name, items in variants.items():
        largest = max(stored_size(a) for block in items for a in dynamo_items(block))
        db_text = f", DynamoDB Local {median(server[name]):.0f} µs/item" if args.server_pid else ""
        print(f"{name}: median {median(rates[name]):,.0f} items/s, client {median(client[name]):.0f} µs/item{db_text}, "
              f"largest item {largest:,} bytes")
    drop = 1 - median(rates["with reasons"]) / median(rates["lists only"])
    paired = [b / a - 1 for a, b in zip(rates["lists only"], rates["with reasons"])]
    print(f"write-rate change with reasons: {-drop:+.1%} (medians); per round "
          f"{' / '.join(f'{c:+.1%}' for c in paired)}, median {median(paired):+.1%}")
    reasons = [len(a["reasons"]["S"].encode()) for block in variants["with reasons"] for a in dynamo_items(block)
               if "reasons" in a]
    packed = [len(zlib.compress(a["reasons"]["S"].encode(), 6, -11)) for block in variants["with reasons"]
              for a in dynamo_items(block) if "reasons" in a]
    print(f"building the attribute values (client CPU, best of 5): lists only {build_cost(variants['lists only']):.1f}, "
          f"with reasons {build_cost(variants['with reasons']):.1f}, reasons zlib-compressed "
          f"{build_cost(variants['with reasons'], compress=True):.1f} µs/item; reasons median {median(reasons):.0f} "
          f"bytes (largest {max(reasons):,}), compressed {median(packed):.0f} (largest {max(packed):,})")


if __name__ == "__main__":
    main()
