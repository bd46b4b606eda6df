"""Prometheus counters of the experiments (summed over gunicorn workers like the others).

Label values are bounded: experiment and variant names come from the experiments file (plus
``fallback``), events from a fixed list.

The counters are created on first use (module ``__getattr__``), after
``recommender.api.metrics`` has set up prometheus-client's multiprocess mode: importing that
at the top would import the API package, which imports this module.
"""

from __future__ import annotations

import threading
from typing import Any

_SPECS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "EXPOSURES": ("similar_users_ab_exposures", "Answers given inside an experiment", ("experiment", "variant")),
    "FALLBACKS": ("similar_users_ab_fallbacks",
                  "Answers from the default model because the arm's model had no row for the user", ("experiment", "arm")),
    "EVENTS": ("similar_users_ab_events", "Feedback events stored (each distinct event once)",
               ("experiment", "variant", "event")),
    "DUPLICATE_EVENTS": ("similar_users_ab_duplicate_events", "Feedback events received again (not counted twice)",
                         ("experiment", "variant", "event")),
    "LOG_WRITES": ("similar_users_ab_log_writes", "Exposure and event records by outcome of the background write",
                   ("kind", "outcome")),
}
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name not in _SPECS:
        raise AttributeError(name)
    with _lock:
        if name not in globals():
            from recommender.api.http import metrics  # noqa: F401  (multiprocess mode first)
            from prometheus_client import Counter

            metric, documentation, labels = _SPECS[name]
            globals()[name] = Counter(metric, documentation, list(labels))
    return globals()[name]
