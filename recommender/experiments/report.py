"""The figures of an experiment, from its exposures and feedback events (pure functions, no I/O).

* **Click-through rate** is clicks per neighbour shown (an impression is one similar user in
  one answer), with a Wilson 95% interval.  The statistics are scipy's.  Exposures (answers) and distinct exposed users are
  reported beside it, and follows and dismissals per impression too.
* **Lift** of each arm against the control, and a **two-proportion z-test** (pooled, two-sided)
  of its CTR against the control's.  Impressions of one user are not independent (the same
  user sees several lists), so the interval and p-value are somewhat optimistic when users
  come back many times; the user-level click rate is reported too as a check.
* **Sample-ratio mismatch**: a chi-square test of the users assigned to each arm against the
  weights.  A mismatch (p < 0.001) means the split itself is broken (lost exposures, a bug in
  assignment, bots), and no other figure of the report can be trusted: it is printed loudly.

Answers given by the default model because the arm's model had no row for the user are their
own variant, ``fallback``: reported, never compared (they are not what the arm serves).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from recommender.experiments.definitions import FALLBACK, Experiment

SRM_ALPHA = 0.001
EXPOSURE_COLUMNS = ["request_id", "user_handle", "arm", "variant", "model_handle", "shown"]
EVENT_COLUMNS = ["request_id", "similar_user_handle", "event", "variant"]


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (scipy's ``binomtest``); NaN without trials."""
    if trials == 0:
        return (math.nan, math.nan)
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) of H0: p1 == p2, pooled variance.

    The pooled two-proportion z-test is the chi-square test of the 2×2 table without continuity
    correction (z² = χ², same p-value); z takes the sign of p1 − p2.
    """
    if min(n1, n2) == 0:
        return (math.nan, math.nan)
    if x1 + x2 in (0, n1 + n2):  # every trial alike: no variance, no evidence of a difference
        return (0.0, 1.0)
    chi2, p, _, _ = stats.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
    return (math.copysign(math.sqrt(chi2), x1 / n1 - x2 / n2), float(p))


def sample_ratio(assigned: dict[str, int], weights: dict[str, float]) -> dict:
    """Chi-square of assigned users per arm against the weights; ``mismatch`` when p < SRM_ALPHA."""
    arms = list(weights)
    observed = np.array([assigned.get(a, 0) for a in arms], dtype=float)
    total = observed.sum()
    if total == 0:
        return {"observed": assigned, "expected": {}, "chi2": math.nan, "p_value": math.nan, "mismatch": False}
    shares = np.array([weights[a] for a in arms]) / sum(weights.values())
    expected = shares * total
    chi2, p = stats.chisquare(observed, expected)
    return {
        "observed": {a: int(o) for a, o in zip(arms, observed)},
        "expected": {a: round(float(e), 1) for a, e in zip(arms, expected)},
        "chi2": round(float(chi2), 3),
        "p_value": float(p),
        "mismatch": bool(p < SRM_ALPHA),
    }


@dataclass
class VariantFigures:
    variant: str
    model_handle: str
    exposed_users: int
    exposures: int
    impressions: int
    events: dict[str, int]
    ctr: float
    ctr_low: float
    ctr_high: float
    users_clicking: float  # share of exposed users with at least one click
    lift: float | None = None  # relative to the control's CTR
    z: float | None = None
    p_value: float | None = None


@dataclass
class Report:
    experiment: str
    control: str
    alpha: float
    variants: list[VariantFigures]
    sample_ratio: dict
    winner: str | None
    verdict: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def build(experiment: Experiment, exposures: pd.DataFrame, events: pd.DataFrame, alpha: float = 0.01) -> Report:
    """The report of ``experiment`` from its exposures (one row per answer, ``shown`` = number of
    neighbours) and events (one row per distinct event)."""
    clicks = events[events["event"] == "click"]
    clicked_users = exposures.merge(clicks[["request_id"]].drop_duplicates(), on="request_id")
    figures: dict[str, VariantFigures] = {}
    variants = [arm.name for arm in experiment.arms] + ([FALLBACK] if (exposures["variant"] == FALLBACK).any() else [])
    for variant in variants:
        shown = exposures[exposures["variant"] == variant]
        counts = events[events["variant"] == variant]["event"].value_counts()
        n_clicks, impressions = int(counts.get("click", 0)), int(shown["shown"].sum())
        users = int(shown["user_handle"].nunique())
        model = next((a.model for a in experiment.arms if a.name == variant), None)
        if model is None:
            model = str(shown["model_handle"].iloc[0]) if len(shown) else ""
        low, high = wilson(n_clicks, impressions)
        figures[variant] = VariantFigures(
            variant=variant, model_handle=model, exposed_users=users, exposures=int(len(shown)),
            impressions=impressions, events={e: int(counts.get(e, 0)) for e in ("click", "follow", "dismiss")},
            ctr=n_clicks / impressions if impressions else math.nan, ctr_low=low, ctr_high=high,
            users_clicking=(clicked_users[clicked_users["variant"] == variant]["user_handle"].nunique() / users
                            if users else math.nan),
        )
    control = figures[experiment.control_arm]
    for f in figures.values():
        if f.variant in (control.variant, FALLBACK) or not f.impressions or not control.impressions:
            continue
        f.lift = (f.ctr - control.ctr) / control.ctr if control.ctr else None
        f.z, f.p_value = two_proportion_z(f.events["click"], f.impressions, control.events["click"], control.impressions)

    assigned = exposures.groupby("arm")["user_handle"].nunique().to_dict()
    srm = sample_ratio(assigned, {arm.name: arm.weight for arm in experiment.arms})
    warnings = []
    if srm["mismatch"]:
        warnings.append(
            f"SAMPLE RATIO MISMATCH: users per arm {srm['observed']} against expected {srm['expected']} "
            f"(chi-square {srm['chi2']}, p = {srm['p_value']:.2g}); the split is broken, do not trust this report")
    winner, verdict = _decide(experiment, figures, alpha)
    return Report(experiment.name, control.variant, alpha, list(figures.values()), srm, winner, verdict, warnings)


def _decide(experiment: Experiment, figures: dict[str, VariantFigures], alpha: float) -> tuple[str | None, str]:
    arms = [figures[a.name] for a in experiment.arms if figures[a.name].impressions]
    if len(arms) < 2:
        return None, "not enough data: an arm has no exposures yet"
    control = figures[experiment.control_arm]
    best = max(arms, key=lambda f: f.ctr)
    others = [f for f in arms if f is not control]
    if best is control:
        if all(f.p_value is not None and f.p_value < alpha for f in others):
            worst_p = max(f.p_value for f in others)  # type: ignore[type-var]
            return control.variant, (f"{control.variant} ({control.model_handle}) wins: every other arm has a lower CTR "
                                     f"(p <= {worst_p:.2g} < {alpha})")
        return None, f"no significant difference at alpha = {alpha}: keep {control.variant}"
    if best.p_value is not None and best.p_value < alpha:
        return best.variant, (f"{best.variant} ({best.model_handle}) wins: CTR {best.ctr:.4f} vs {control.ctr:.4f}, "
                              f"lift {best.lift:+.1%}, p = {best.p_value:.2g} < {alpha}")
    return None, f"no significant difference at alpha = {alpha}: keep {control.variant}"


def markdown(report: Report) -> str:
    lines = [f"# A/B experiment `{report.experiment}`", ""]
    for warning in report.warnings:
        lines += [f"> **WARNING: {warning}**", ""]
    lines += [f"**Decision:** {report.verdict}", "",
              f"Control: `{report.control}`; two-proportion z-test of CTR against it, alpha = {report.alpha}.", "",
              "| variant | model | exposed users | exposures | impressions | clicks | follows | dismisses "
              "| CTR | 95% interval | users clicking | lift vs control | p-value |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for f in report.variants:
        lift = "control" if f.variant == report.control else ("" if f.lift is None else f"{f.lift:+.1%}")
        p = "" if f.p_value is None else f"{f.p_value:.2g}"
        lines.append(
            f"| {f.variant} | `{f.model_handle}` | {f.exposed_users:,} | {f.exposures:,} | {f.impressions:,} "
            f"| {f.events['click']:,} | {f.events['follow']:,} | {f.events['dismiss']:,} | {f.ctr:.4f} "
            f"| {f.ctr_low:.4f}–{f.ctr_high:.4f} | {f.users_clicking:.3f} | {lift} | {p} |")
    srm = report.sample_ratio
    state = "**MISMATCH**" if srm["mismatch"] else "ok"
    lines += ["", f"Sample ratio (users per arm): observed {srm['observed']}, expected {srm['expected']}, "
              f"chi-square {srm['chi2']}, p = {srm['p_value']:.3g}: {state} (threshold p < {SRM_ALPHA})."]
    return "\n".join(lines)


def chart(report: Report, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [f for f in report.variants if f.impressions]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    xs = range(len(variants))
    ctr = [f.ctr for f in variants]
    err = [[f.ctr - f.ctr_low for f in variants], [f.ctr_high - f.ctr for f in variants]]
    colours = ["#4C72B0" if f.variant == report.control else "#DD8452" if f.variant != FALLBACK else "#999999"
               for f in variants]
    ax.bar(xs, ctr, yerr=err, capsize=6, color=colours)
    ax.set_xticks(list(xs), [f"{f.variant}\n{f.model_handle}" for f in variants], fontsize=6)
    ax.set_ylabel("CTR (clicks / neighbours shown)")
    ax.set_title(f"{report.experiment}: CTR with 95% intervals", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def svg_chart(report: Report) -> str:
    """The CTR of each variant with its 95% interval, as an SVG element for a web page (``/explore/experiments``).

    The same figure as :func:`chart` (the PNG of the report files), drawn as text so that the page
    needs no plotting library in the browser; attributes only, no ``style``, so a strict
    Content-Security-Policy allows it.  The figures themselves are in the page's table beside it.
    """
    from html import escape

    variants = [f for f in report.variants if f.impressions]
    width, height, left, bottom, top = 560, 250, 64, 56, 28
    plot_h = height - bottom - top
    high = max([f.ctr_high for f in variants if not math.isnan(f.ctr_high)] + [0.0]) or 1.0
    step = _nice_step(high / 4)
    y_max = step * math.ceil(high / step)
    slot = (width - left - 16) / max(1, len(variants))

    def y(value: float) -> float:
        return top + plot_h * (1 - value / y_max)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="chart-{escape(report.experiment)}-title">',
             f'<title id="chart-{escape(report.experiment)}-title">{escape(report.experiment)}: click-through rate '
             f'per variant with 95% intervals</title>']
    ticks = int(round(y_max / step))
    for i in range(ticks + 1):
        value = i * step
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#d0d0d0"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" fill="#222">{value:.3g}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" transform="rotate(-90 14 {top + plot_h / 2:.1f})" '
                 f'text-anchor="middle" font-size="11" fill="#222">CTR (clicks / neighbours shown)</text>')
    for i, f in enumerate(variants):
        x = left + i * slot + slot * 0.2
        bar_w = slot * 0.6
        colour = "#1f5fa8" if f.variant == report.control else "#6b6b6b" if f.variant == FALLBACK else "#b35900"
        parts.append(f'<rect x="{x:.1f}" y="{y(f.ctr):.1f}" width="{bar_w:.1f}" height="{top + plot_h - y(f.ctr):.1f}" '
                     f'fill="{colour}"><title>{escape(f.variant)}: CTR {f.ctr:.4f} '
                     f'(95% interval {f.ctr_low:.4f}–{f.ctr_high:.4f})</title></rect>')
        mid = x + bar_w / 2
        parts.append(f'<path d="M{mid:.1f} {y(f.ctr_low):.1f}V{y(f.ctr_high):.1f}M{mid - 8:.1f} {y(f.ctr_low):.1f}h16'
                     f'M{mid - 8:.1f} {y(f.ctr_high):.1f}h16" stroke="#111" stroke-width="1.5" fill="none"/>')
        parts.append(f'<text x="{mid:.1f}" y="{height - bottom + 18}" text-anchor="middle" font-size="12" fill="#222">'
                     f'{escape(f.variant)}</text>')
        parts.append(f'<text x="{mid:.1f}" y="{height - bottom + 34}" text-anchor="middle" font-size="10" fill="#444">'
                     f'{escape(f.model_handle)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#222"/>')
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``: readable axis ticks."""
    if raw <= 0 or math.isnan(raw):
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
