"""Exponential backoff with full jitter, capped: for what botocore's own retries do not cover.

botocore already retries throttled and failed *requests* (standard or adaptive mode: exponential
backoff with jitter, ``total_max_attempts`` in all).  A ``BatchWriteItem`` that succeeds but hands
back ``UnprocessedItems`` is not an error to botocore, so the batch writer
(:mod:`recommender.store.writer`, the only user) re-sends those itself with this policy, and
gives up loudly when the cap is reached.  No other code retries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class RetriesExhausted(RuntimeError):
    """The cap was reached; the batch job must fail rather than publish a partial run."""


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 0.05
    cap_seconds: float = 5.0
    max_retries: int = 8
    #: How a delay is waited out; tests pass a recorder instead of sleeping.
    sleeper: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2**attempt))
        return (rng or random).uniform(0, ceiling)

    def sleep(self, attempt: int) -> None:
        if attempt > self.max_retries:
            raise RetriesExhausted(f"gave up after {self.max_retries} retries")
        self.sleeper(self.delay(attempt))
