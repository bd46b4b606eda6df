"""The client's CPU per item written through boto3, without a database: what the writer itself costs.

``python -m benchmarks.bench_client_cpu --items 20000 --out benchmarks/results/client_cpu.json`` writes generator-shaped
items (N=10, with and without three reasons per neighbour) through the generator's
:class:`~recommender.store.writer.BatchWriter` on its botocore client, whose ``before-send`` hook
answers every ``BatchWriteItem`` with an empty ``UnprocessedItems`` instead of sending it.  Everything
the client does is measured (building the attribute values, marshalling, botocore's serialising,
signing, parsing the answer, the writer's threads) and nothing the database does, so the figure
does not depend on DynamoDB Local.  One thread, so that the process CPU is the writer's alone.

Also with ``parameter_validation`` on (the API's setting), to show what the generator saves by
turning it off (docs/storage.md).  The write rate into DynamoDB Local through the same client is
``make bench``'s (``write_items_per_second``) and ``benchmarks/bench_write.py``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_):
        yield self.data

    def read(self, *_, **__) -> bytes:
        return self.data


def _answer(request, **_):
    """Every BatchWriteItem written in full (the hook's return value replaces the HTTP exchange)."""
    from botocore.awsrequest import AWSResponse

    data = b'{"UnprocessedItems":{}}'
    return AWSResponse(request.url, 200, {"content-type": "application/x-amz-json-1.0", "content-length": str(len(data))},
                       _Body(data))


def blocks(count: int, seed: int = 0):
    from benchmarks.bench_write import fake_neighbours
    from recommender.reasons import MAX_REASONS, Explanations
    from recommender.store.items import build_items

    neighbours = fake_neighbours(count, seed=seed)
    rng = np.random.default_rng(seed)
    shape = (count, neighbours.similar.shape[1], MAX_REASONS)
    why = Explanations("tag", np.array([f"tag-{k}" for k in range(200)]), rng.integers(0, 200, size=shape),
                       rng.random(shape).round(3))
    return {"lists": build_items("m", neighbours, "bench", "2026-01-01T00:00:00Z"),
            "lists + reasons": build_items("m", neighbours, "bench", "2026-01-01T00:00:00Z", why)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")

    import botocore
    from botocore.config import Config

    from recommender.config import GeneratorSettings
    from recommender.store.dynamo import GeneratorClientSpec, dynamodb_client
    from recommender.store.writer import BatchWriter

    spec = GeneratorClientSpec.of(GeneratorSettings(dynamodb_endpoint_url="http://127.0.0.1:9", write_threads=1))
    clients = {"generator (parameter_validation off)": spec.client(),
               "parameter_validation on": dynamodb_client(spec.endpoint_url, spec.region,
                                                          spec.config().merge(Config(parameter_validation=True)))}
    for client in clients.values():
        client.meta.events.register("before-send.dynamodb.BatchWriteItem", _answer)
    items = blocks(args.items)
    rounds: dict[str, list[float]] = {}
    for round_ in range(args.rounds + 1):  # round 0 warms up (imports, first requests) and is not kept
        for client_name, client in clients.items():
            writer = BatchWriter(client, threads=1)
            for shape, block in items.items():
                c0 = time.process_time()
                written = writer.write("t", block)
                cpu = time.process_time() - c0
                assert written == len(block)
                if round_:
                    rounds.setdefault(f"{shape}, {client_name}", []).append(round(1e6 * cpu / written, 1))
    median = {name: statistics.median(values) for name, values in rounds.items()}
    print(f"client CPU per item written through boto3 (µs, median of {args.rounds} rounds, {args.items:,} items, N=10):")
    for name, value in median.items():
        print(f"  {name}: {value:.1f}")
    if args.out:
        args.out.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cores": os.cpu_count(),
            "loadavg_1m": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "botocore": botocore.__version__, "items": args.items, "rounds": rounds,
            "client_cpu_us_per_item": median}, indent=2) + "\n")


if __name__ == "__main__":
    main()
