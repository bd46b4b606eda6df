"""Stored item sizes per model, from a generator ``--dry-run`` file: what DynamoDB would count.

``python -m benchmarks.item_sizes out/items.jsonl``: each JSON line is turned into the attribute values
the generator writes (:func:`~recommender.store.codec.to_dynamo`) and measured with
:func:`~recommender.store.codec.stored_size` (DynamoDB's rule: names plus values).  Prints, per
model and for all, the items, the mean and largest size with the reasons, the share of items
over 1 KB and the mean write units per item (DynamoDB bills a write per started KB), and the mean
and largest size without the reasons.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

from recommender.store.codec import from_json_line, stored_size, to_dynamo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("jsonl", help="a generator --dry-run output")
    args = parser.parse_args(argv)
    sizes: dict[str, list[tuple[int, int]]] = defaultdict(list)
    with open(args.jsonl, encoding="utf-8") as lines:
        for line in lines:
            attributes = to_dynamo(from_json_line(line))
            reasons = attributes.pop("reasons", None)
            plain = stored_size(attributes)
            sizes[attributes["model_handle"]["S"]].append((plain, plain + (stored_size({"reasons": reasons}) if reasons else 0)))
    print("model | items | with reasons: mean / largest bytes | over 1 KB | write units / item | without: mean / largest")
    for model, pairs in [*sizes.items(), ("all", [p for pairs in sizes.values() for p in pairs])]:
        plain, full = zip(*pairs)
        over = sum(size > 1024 for size in full) / len(full)
        units = statistics.mean(-(-size // 1024) for size in full)
        print(f"{model} | {len(pairs):,} | {statistics.mean(full):,.0f} / {max(full):,} | {over:.1%} | {units:.2f} | "
              f"{statistics.mean(plain):,.0f} / {max(plain):,}")


if __name__ == "__main__":
    main()
