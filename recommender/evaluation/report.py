"""Write the figures: JSON (all of them), a markdown summary and one PNG bar chart per metric.

Nothing here depends on the clock, so the same figures give the same bytes (the JSON and the
markdown are diffable between runs; timings go to the log only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recommender.evaluation.baselines import MOST_ACTIVE, RANDOM
from recommender.evaluation.references import ALS_DIRECT, ITEM_POP, REFERENCES
from recommender.evaluation.score_prediction import TAG_MEAN, USER_MEAN

TASK_TITLES = {
    "courses": "Held-out course views (latest 20% of each user's distinct courses)",
    "interests": "Held-out interest tags (latest 20% of each user's followed tags)",
    "assessments": "Held-out assessment tags (latest 20% of each user's assessments)",
}
BASELINE_COLORS = {RANDOM: "#9e9e9e", MOST_ACTIVE: "#5f5f5f", ITEM_POP: "#c9a227", ALS_DIRECT: "#3b3b8f"}
PLANTED_GROUP = "planted"
GROUP_NAMES = {
    "courses": "held-out course views",
    "interests": "held-out interest tags",
    "assessments": "held-out assessment tags",
    PLANTED_GROUP: "planted truth (full-data fit)",
}
_LABELS = {
    "recall_at": "recall@{k}",
    "ndcg_at": "NDCG@{k}",
    "hit_rate_at": "hit-rate@{k}",
    "community_precision_at": "community precision@{k}",
    "skill_precision_at": "skill precision@{k}",
}


def label(metric: str) -> str:
    """``recall_at_10`` -> ``recall@10``; other names with underscores as spaces."""
    head, _, tail = metric.rpartition("_")
    if head in _LABELS and tail.isdigit():
        return _LABELS[head].format(k=tail)
    return metric.replace("_", " ")


def write_json(figures: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, sort_keys=False) + "\n")


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _fmt(value: Any, error: float | None = None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and error:
        return f"{value:.4f} ± {error:.4f}"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def results_markdown(results: dict[str, Any]) -> str:
    """The whole results file: one table per task, planted truth, agreement, verdicts."""
    config = results["config"]
    k, n = config["k"], config["top_n"]
    data = results["data"]
    lines = [
        "# Offline evaluation",
        "",
        f"Written by `similar-users-evaluate` (`make evaluate`). {data['users']:,} users, "
        f"{data['user_interests_rows']:,} interest rows, {data['user_course_views_rows']:,} view rows, "
        f"{data.get('user_assessment_scores_rows', 0):,} assessment rows; "
        f"top-{n} neighbours, top-{k} recommendations, hold-out fraction {config['holdout_fraction']}, "
        f"seed {config['seed']}.",
        "",
        "Each user's latest 20% of distinct items (by first date; at least 1 when the user has 2 or more, "
        "rounded half up, ties broken by a seeded key) are held out; models are fitted on the rest. "
        f"Items are scored by the similarity-weighted training items of the user's top-{n} neighbours, "
        "items already seen in training dropped. Figures average over users with held-out items; a user "
        f"the model does not answer for scores 0. Baselines: `{RANDOM}` (seeded random users) and "
        f"`{MOST_ACTIVE}` (the {n} users with most training items, for everyone). Reference item recommenders "
        f"(not similar-users models; where good is): `{ITEM_POP}` (each user's {k} most popular unseen training "
        f"items) and, for courses, `{ALS_DIRECT}` (the ALS model's own course scores). ± is one standard error "
        "of the mean over users: two figures closer than about two standard errors are within the noise.",
        "",
    ]
    for name, task in results["tasks"].items():
        split = task["split"]
        metrics = task["metrics"]
        columns = list(dict.fromkeys(c for values in metrics.values() for c in values))
        errors = task.get("standard_errors", {})
        lines += [
            f"## {TASK_TITLES.get(name, name)}",
            "",
            f"{split['evaluated_users']:,} users evaluated, "
            f"{split['heldout_user_items']:,} held-out (user, item) pairs, "
            f"{split['training_user_items']:,} training pairs, {split['items']:,} items.",
            "",
        ]
        rows = [
            [f"`{system}`"] + [_fmt(values.get(c), errors.get(system, {}).get(c)) for c in columns]
            + [_fmt(task[v].get(system, "reference" if system in REFERENCES else "baseline"))
               for v in ("beats_most_active_users", "beats_random")]
            for system, values in metrics.items()
        ]
        lines += _table(rows, ["system"] + [label(c) for c in columns] + ["beats most active users", "beats random"])
        lines += [""] + verdict_lines(name, task, k) + [""]
    planted = results.get("planted")
    if planted:
        columns = list(planted["chance"])
        lines += [f"## Planted truth (synthetic data; {planted['fit']} fit)", "",
                  "Averages over the users each system answers for; *same users*: over the "
                  f"{planted.get('same_users', 0):,} users that every model answers for.", ""]
        errors = planted.get("standard_errors", {})
        columns += [c for c in next(iter(planted["metrics"].values())) if c not in columns]
        rows = [[f"`{s}`"] + [_fmt(v[c], errors.get(s, {}).get(c)) for c in columns] for s, v in planted["metrics"].items()]
        rows.append(["chance (sum of squared shares)"] + [_fmt(planted["chance"].get(c)) for c in columns])
        lines += _table(rows, ["system"] + [label(c) for c in columns]) + [""]
    lines += assessment_score_lines(results.get("assessment_scores"))
    lines += ensemble_lines(results)
    agreement = results["agreement"]
    if agreement["pairs"]:
        title = f"Agreement: mean Jaccard of neighbour lists ({agreement['fit']} fit, users {agreement['users']})"
        lines += [f"## {title}", ""]
        rows = [[f"`{p['a']}`", f"`{p['b']}`", _fmt(p["mean_jaccard"])] for p in agreement["pairs"]]
        lines += _table(rows, ["model", "model", "mean Jaccard"]) + [""]
    return "\n".join(lines)


def assessment_score_lines(scores: dict[str, Any] | None) -> list[str]:
    """The held-out assessment-score table (:mod:`recommender.evaluation.score_prediction`)."""
    if not scores:
        return []
    split = scores["split"]
    lines = [
        "## Held-out assessment scores (the same split as the held-out assessment tags)", "",
        f"{split['heldout_pairs']:,} held-out (user, assessment tag) pairs of {split['evaluated_users']:,} users, "
        f"{split['tags']} tags. Target: the held-out score's percentile among the tag's training takers. "
        "Prediction: the similarity-weighted mean training percentile of the user's neighbours who took that tag; "
        "the tag's mean percentile when none did (*coverage*: how often they did). "
        f"References: `{TAG_MEAN}` (always the tag mean) and `{USER_MEAN}` (the user's own mean percentile on "
        "their other assessments). Lower MAE/RMSE is better; ± is one standard error over pairs.", "",
    ]
    columns = ["mae", "rmse", "mae_covered", "coverage"]
    names = {"mae": "MAE", "rmse": "RMSE", "mae_covered": "MAE where covered", "coverage": "coverage"}
    errors = scores["standard_errors"]
    rows = [[f"`{system}`"] + [_fmt(values.get(c), errors.get(system, {}).get(c)) for c in columns]
            for system, values in scores["metrics"].items()]
    return lines + _table(rows, ["system"] + [names[c] for c in columns]) + [""]


def ensemble_lines(results: dict[str, Any]) -> list[str]:
    """The bar, said explicitly: is the ensemble >= the best single model on each metric?"""
    ndcg = label(f"ndcg_at_{results['config']['k']}")
    found = [(f"{name}: {ndcg}", task.get("ensemble_vs_best")) for name, task in results["tasks"].items()]
    planted = results.get("planted") or {}
    n = results["config"]["top_n"]
    for key, title in (("community_all_users", "all users each model answers"),
                       ("community_same_users", "the same users")):
        found.append((f"planted: community precision@{n}, {title}", planted.get("ensemble_vs_best", {}).get(key)))
    found = [(title, c) for title, c in found if c]
    if not found:
        return []
    lines = ["## Ensemble vs the best single model (same run)", "",
             "Best single model = the other model with the highest mean on that metric. Difference ± its "
             "standard error: paired per user where both are scored on the same users, unpaired otherwise.", ""]
    for title, c in found:
        answer = "yes" if c["at_least_as_good"] else "**NO**"
        tests = (f" One-sided p-values (ensemble above): paired t-test {c['p_value_paired_t']:.3g}, "
                 f"Wilcoxon signed-rank {c['p_value_wilcoxon']:.3g}." if "p_value_paired_t" in c else "")
        lines.append(
            f"- {title}: `{c['candidate']}` {c['candidate_value']:.4f} ± {c['candidate_error']:.4f} vs "
            f"`{c['best_single']}` {c['best_value']:.4f} ± {c['best_error']:.4f}; difference "
            f"{c['difference']:+.4f} ± {c['difference_error']:.4f} ({'paired' if c['paired'] else 'unpaired'}). "
            f"≥ best single model: {answer}, {c['verdict']}.{tests}")
    return lines + [""]


def verdict_lines(task_name: str, task: dict[str, Any], k: int) -> list[str]:
    """One line per model: does it beat the most-active-users (and the random) baseline on NDCG@k?"""
    metric = f"ndcg_at_{k}"
    values = task["metrics"]
    out = []
    for system, beats in task["beats_most_active_users"].items():
        verb = "beats" if beats else "DOES NOT BEAT"
        line = (f"- {task_name}: `{system}` {verb} the most active users on {label(metric)} "
                f"({values[system][metric]:.4f} vs {values[MOST_ACTIVE][metric]:.4f}")
        paired = task.get("versus_most_active_users", {}).get(system)
        if paired:
            line += (f"; paired difference {paired['difference']:+.4f} ± {paired['difference_error']:.4f}, "
                     + ("beyond two standard errors" if paired["clear"] else "not beyond two standard errors"))
        line += ")"
        if not task["beats_random"][system]:
            line += f"; it does not beat random users either ({values[RANDOM][metric]:.4f})"
        out.append(line)
    return out


def charts(results: dict[str, Any], images_dir: Path, prefix: str = "eval_") -> list[Path]:
    """One bar chart per metric: tasks as groups, models and baselines side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, dict[str, float]]] = {}  # metric -> group -> system -> value
    spread: dict[str, dict[str, dict[str, float]]] = {}  # same keys -> standard error
    groups_of = dict(results["tasks"])
    chance: dict[str, float] = {}
    if results.get("planted"):
        chance = results["planted"]["chance"]
        groups_of[PLANTED_GROUP] = results["planted"]
    for name, group in groups_of.items():
        for system, values in group["metrics"].items():
            for metric, value in values.items():
                series.setdefault(metric, {}).setdefault(name, {})[system] = value
                error = group.get("standard_errors", {}).get(system, {}).get(metric, 0.0)
                spread.setdefault(metric, {}).setdefault(name, {})[system] = error
    images_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for metric, groups in series.items():
        systems = list(dict.fromkeys(s for g in groups.values() for s in g))
        fig, ax = plt.subplots(figsize=(11, 4.6))
        width = 0.8 / len(systems)
        model_colors = iter(plt.get_cmap("tab10").colors)
        colors = {s: BASELINE_COLORS[s] if s in BASELINE_COLORS else next(model_colors) for s in systems}
        for i, system in enumerate(systems):
            xs = [g + (i - (len(systems) - 1) / 2) * width for g in range(len(groups))]
            values = [groups[group].get(system, float("nan")) for group in groups]
            errors = [spread[metric][group].get(system, 0.0) for group in groups]
            bars = ax.bar(xs, values, width, yerr=errors, label=system, color=colors[system],
                          error_kw={"elinewidth": 0.8, "capsize": 1.5})
            ax.bar_label(bars, fmt="%.3f", fontsize=5, padding=2, rotation=90)
        if metric in chance:
            ax.axhline(chance[metric], color="black", linestyle="--", linewidth=0.8, label="chance")
        ax.set_xticks(range(len(groups)), [GROUP_NAMES.get(g, g) for g in groups])
        ax.set_ylabel(label(metric))
        ax.set_title(label(metric))
        ax.margins(y=0.15)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
        path = images_dir / f"{prefix}{metric}.png"
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        written.append(path)
    return written


def tuning_markdown(tuning: dict[str, Any]) -> str:
    """Every configuration on validation, then default vs best on validation and test."""
    lines = [
        "# Tuning on the validation split",
        "",
        "Validation = the latest 20% of each user's *training* items (same rule as the test hold-out); "
        "every configuration is fitted on the rest and compared there; the test split is only used to "
        "report the default and the chosen configuration. Gain = chosen minus default on the selection "
        "metric; the margin is z standard errors of the paired per-user differences, z Bonferroni-corrected "
        "for picking the best of the grid (one-sided 2.5%); 'clear' when the gain exceeds the margin. "
        "Planted-precision columns (synthetic data only) belong to the same fit as the row (validation rows: "
        "fitted without the validation items; test rows: without the test items) and are not used to choose. "
        "± is the standard error of the per-user mean.",
        "",
    ]
    for handle, model in tuning["models"].items():
        sel = model["selection_metric"]
        lines += [f"## `{handle}` (task: {model['task']}, selected on validation {label(sel)})", ""]
        columns = list(model["grid"][0]["validation"])
        rows = [
            [f"`{describe_params(entry['params'])}`" + (" (default)" if entry["default"] else "")]
            + [_fmt(entry["validation"][c], entry.get("validation_errors", {}).get(c)) for c in columns]
            for entry in model["grid"]
        ]
        lines += _table(rows, ["configuration"] + [f"val {label(c)}" for c in columns]) + [""]
        columns = list(model["before_after"]["default"]["test"])
        rows = []
        for which in ("default", "best"):
            entry = model["before_after"][which]
            for split in ("validation", "test"):
                figures = [_fmt(entry[split].get(c, ""), entry.get(f"{split}_errors", {}).get(c)) for c in columns]
                rows.append([which, f"`{describe_params(entry['params'])}`", split] + figures)
        lines += _table(rows, ["", "configuration", "split"] + [label(c) for c in columns]) + [""]
        gain = model["gain"]
        lines += [
            f"Gain of the best over the default on validation {label(sel)}: {gain['validation']:+.4f} "
            f"(margin {gain['margin']:.4f} = {gain['z']} SE) "
            f"({'clear' if gain['clear'] else 'not clear'}); on test: {gain['test']:+.4f}. {model['recommendation']}",
            "",
        ]
    return "\n".join(lines)


def describe_params(params: dict[str, Any]) -> str:
    """``k=v, ...`` of a grid entry (``defaults`` when empty)."""
    return ", ".join(f"{k}={_value(v)}" for k, v in params.items()) or "defaults"


def _value(value: Any) -> str:
    """A weights mapping (the ensemble's) as ``{als_course_view 1, tfidf_interest 1}``: non-zero only,
    the handles without their shared words, so that a grid row stays readable; per-model parameters
    as ``{als_course_view factors=64}``."""
    if not isinstance(value, dict):
        return str(value)
    short = {h: h.replace("collab_filtering_user_", "").replace("_user_", "_") for h in value}
    if any(isinstance(v, dict) for v in value.values()):  # per model parameters (component_params)
        return "{" + ", ".join(f"{short[h]} {describe_params(v)}" for h, v in value.items()) + "}"
    return "{" + ", ".join(f"{short[h]} {w:g}" for h, w in value.items() if w) + "}"
