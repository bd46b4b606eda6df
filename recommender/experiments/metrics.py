"""Prometheus counters of the experiments (summed over gunicorn workers like the others).

Label values are bounded: experiment and variant names come from the experiments file (plus
``fallback``), events from a fixed list.
"""

from __future__ import annotations

from recommender.api import metrics as _api_metrics  # noqa: F401  (sets up multiprocess mode first)
from prometheus_client import Counter  # noqa: E402

EXPOSURES = Counter("similar_users_ab_exposures", "Answers given inside an experiment", ["experiment", "variant"])
FALLBACKS = Counter(
    "similar_users_ab_fallbacks", "Answers from the default model because the arm's model had no row for the user",
    ["experiment", "arm"])
EVENTS = Counter("similar_users_ab_events", "Feedback events stored (each distinct event once)",
                 ["experiment", "variant", "event"])
DUPLICATE_EVENTS = Counter("similar_users_ab_duplicate_events", "Feedback events received again (not counted twice)",
                           ["experiment", "variant", "event"])
LOG_WRITES = Counter("similar_users_ab_log_writes", "Exposure and event records by outcome of the background write",
                     ["kind", "outcome"])
RELOAD_ERRORS = Counter("similar_users_ab_reload_errors", "Experiments file reloads refused (broken file kept out)")
