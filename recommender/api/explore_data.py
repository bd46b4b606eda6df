"""What the explorer page (``/explore``) shows, built from the same sources as the JSON API.

One user's neighbours by every registered model come from :class:`~recommender.api.store.ReadStore`
(the items ``POST /similar-users/`` serves, reasons decoded as for ``explain``), each model's run
from the control table's pointers (as ``GET /models``), the offline quality from the evaluation
results file (``make evaluate``), and an experiment's figures from
:mod:`recommender.experiments.report` (the same functions as ``similar-users-ab-report``).
Nothing here renders: the templates do, on the server or for the page's script.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable

from recommender.api.models_list import models_answer
from recommender.api.store import ReadStore
from recommender.evaluation.quality import Quality
from recommender.reasons import described
from recommender.store.dynamo import NoPublishedRun


class NoSuchUser(LookupError):
    """No published model has a row for the user."""


@dataclass
class NeighbourView:
    user_handle: int
    score: float
    reasons: list[dict[str, Any]]
    models_agreeing: int = 1  # how many models list this neighbour for the user


@dataclass
class ModelView:
    model_handle: str
    description: str
    default: bool
    published: bool
    run_id: str | None
    published_at: str | None
    users_covered: int | None
    quality: Quality | None
    neighbours: list[NeighbourView] = field(default_factory=list)
    top_score: float = 1.0  # the bars' scale: scores are comparable within a model, not across models


def user_models(store: ReadStore, user_handle: int, default_model: str, quality: dict[str, Quality]) -> list[ModelView]:
    """Every registered model (registry order) with its run and the user's neighbours.

    Raises :class:`NoSuchUser` when no published model has a row for the user, and lets the
    store's ``StoreUnavailable`` through (the page's 503).
    """
    views = []
    for entry in models_answer(store.pointers(), default_model)["models"]:
        view = ModelView(entry["model_handle"], entry["description"], entry["default"], entry["published"], entry["run_id"],
                         entry["published_at"], entry["users_covered"], quality.get(entry["model_handle"]))
        if view.published:
            try:
                item = store.get(user_handle, view.model_handle)
            except NoPublishedRun:  # unpublished since the pointers were read
                item, view.published = None, False
            if item is not None:
                view.neighbours = [
                    NeighbourView(n.user_handle, n.score, [described(r) for r in n.reasons])
                    for n in item.explained().neighbours
                ]
                view.top_score = max((n.score for n in view.neighbours), default=1.0) or 1.0
        views.append(view)
    if not any(v.neighbours for v in views):
        raise NoSuchUser(f"no published model has similar users for user {user_handle}")
    agreeing = Counter(n.user_handle for v in views for n in {x.user_handle: x for x in v.neighbours}.values())
    for view in views:
        for neighbour in view.neighbours:
            neighbour.models_agreeing = agreeing[neighbour.user_handle]
    return views


# -- experiments ------------------------------------------------------------------------------------

#: Seconds a computed experiment report is reused: computing one scans both experiment tables.
REPORT_SECONDS = 30.0


@dataclass
class ExperimentView:
    name: str
    status: str
    start: datetime
    end: datetime
    active: bool
    split: list[dict[str, Any]]  # arm, model, weight, share of traffic
    report: Any | None  # recommender.experiments.report.Report; None: no exposures yet
    computed_at: str
    chart_svg: str | None


class ExperimentReports:
    """Each experiment's report, computed from its stored exposures and events, reused for
    :data:`REPORT_SECONDS` per process (the page says when it was computed)."""

    def __init__(self, read: Callable[[str], tuple[Any, Any]] | None, seconds: float = REPORT_SECONDS):
        self.read = read  # experiment name -> (exposures, events) DataFrames; None: no database (tests)
        self.seconds = seconds
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Any, str]] = {}

    def report(self, experiment: Any) -> tuple[Any | None, str]:
        """(report or None when nothing was exposed yet, computed-at ISO time)."""
        from recommender.experiments import report as reports

        key = experiment.model_dump_json()  # an edited definition is a new report
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.seconds:
            return cached[1], cached[2]
        computed = None
        if self.read is not None:
            exposures, events = self.read(experiment.name)
            if not exposures.empty:
                computed = reports.build(experiment, exposures, events)
        computed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            self._cache[key] = (time.monotonic(), computed, computed_at)
        return computed, computed_at


def experiment_views(experiments: list[Any], reports: ExperimentReports, now: datetime | None = None) -> list[ExperimentView]:
    from recommender.experiments.report import svg_chart

    now = now or datetime.now(UTC)
    views = []
    for experiment in experiments:
        total = sum(arm.weight for arm in experiment.arms)
        split = [{"arm": arm.name, "model": arm.model, "weight": arm.weight, "share": arm.weight / total,
                  "control": arm.name == experiment.control_arm} for arm in experiment.arms]
        report, computed_at = reports.report(experiment)
        views.append(ExperimentView(experiment.name, experiment.status, experiment.start, experiment.end, experiment.active(now),
                                    split, report, computed_at, svg_chart(report) if report is not None else None))
    return views
