"""The stored item: one per (user, model), the same shape in DynamoDB and in dry-run files."""

from __future__ import annotations

from collections.abc import Iterator

from recommender.topk import Neighbours


def build_items(model_handle: str, neighbours: Neighbours, run_id: str, generated_at: str) -> Iterator[dict]:
    """Items for every user that has at least one neighbour (plain ints and floats)."""
    for user, similar, scores in neighbours.rows():
        yield {
            "user_handle": user,
            "model_handle": model_handle,
            "similar_users": similar,
            "scores": scores,
            "generated_at": generated_at,
            "run_id": run_id,
        }
