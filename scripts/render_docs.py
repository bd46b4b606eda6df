#!/usr/bin/env python
"""Render the measured figures into README.md and docs/ (``make docs``).

Every figure the documentation quotes lives in one JSON file written by the program that measured
it (``benchmarks/*.json``, ``docs/evaluation/results.json``, ``docs/ab/*/report.json``) or in the code
(settings, exit codes).  This script rewrites the marked blocks

    <!-- BEGIN generated: NAME -->
    ...
    <!-- END generated: NAME -->

in README.md and docs/**/*.md from them, so no figure is typed by hand and no two pages can
disagree.  ``--check`` rewrites nothing and exits 1 when a file would change (the test suite runs
it: a hand edit inside a block, or JSON changed without rendering, fails there).  A block whose
NAME has no renderer, or a renderer whose block is nowhere, is an error.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_report import render as bench_render  # noqa: E402
from benchmarks.bench_report import scale_stage_table, scale_table, search_ann_table, search_table  # noqa: E402
from recommender.cli.common import EXIT_CODES  # noqa: E402
from recommender.config import markdown_table  # noqa: E402

BENCH = ROOT / "benchmarks"
EVALUATION = ROOT / "docs" / "evaluation" / "results.json"
AB_DEMO = ROOT / "docs" / "ab" / "demo-interest-vs-views" / "report.json"
BLOCK = re.compile(r"(<!-- BEGIN generated: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- END generated: (?P=name) -->)",
                   re.S)

# The README's "ten key settings": the ones a first deployment changes. Their defaults and
# meanings come from recommender/config.py like the full table's.
KEY_SETTINGS = ("DYNAMODB_ENDPOINT_URL", "DYNAMODB_TABLE", "DATA_DIR", "TOP_N", "SEARCH", "ENGINE", "KEEP_RUNS",
                "MIN_COVERAGE_RATIO", "DEFAULT_MODEL", "API_KEYS")

# The README's and docs/models.md's order; the registry's order.
MODELS = ("tfidf_user_interest", "knn_collab_filtering_user_course_view", "dnn_collab_filtering_user_course_level",
          "als_collab_filtering_user_course_view", "knn_collab_filtering_user_assessment_score",
          "ensemble_user_similarity")


def _json(path: Path):
    return json.loads(path.read_text())


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


# --- settings and exit codes ---------------------------------------------------------------------

def configuration() -> str:
    return markdown_table()


def key_settings() -> str:
    return markdown_table(KEY_SETTINGS)


def exit_codes() -> str:
    return "\n".join(["| code | meaning |", "| --- | --- |", *(f"| {c} | {m} |" for c, m in EXIT_CODES.items())])


# --- models and evaluation -----------------------------------------------------------------------

def _coverage() -> dict[str, tuple[int, int]]:
    """Users each model answers for in the measured 10,000-user run (items written / users)."""
    size = _json(BENCH / "results" / "results.json")["sizes"][0]
    return {h: (m["users_covered"], size["users"]) for h, m in size["generator"]["models"].items()}


def models_at_a_glance() -> str:
    ev = _json(EVALUATION)
    courses, planted = ev["tasks"]["courses"]["metrics"], ev["planted"]["metrics"]
    cover = _coverage()
    rows = ["| model | users answered (of 10,000) | course NDCG@10 | same community | same skill level |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for h in MODELS:
        covered, users = cover[h]
        rows.append(f"| `{h}` | {covered / users:.0%} | {courses[h]['ndcg_at_10']:.4f} "
                    f"| {planted[h]['community_precision_at_10']:.2f} | {planted[h]['skill_precision_at_10']:.2f} |")
    chance = ev["planted"]["chance"]
    rows.append(f"| random users (chance) | | {courses['random_users']['ndcg_at_10']:.4f} "
                f"| {chance['community_precision_at_10']:.2f} | {chance['skill_precision_at_10']:.2f} |")
    return "\n".join(rows)


def evaluation() -> str:
    ev = _json(EVALUATION)
    t, se = ev["tasks"], {k: v["standard_errors"] for k, v in ev["tasks"].items()}
    planted, pse, scores = ev["planted"]["metrics"], ev["planted"]["standard_errors"], ev["assessment_scores"]
    rows = ["| system | course NDCG@10 | course hit@10 | tag NDCG@10 | assessment NDCG@10 | community prec@10 "
            "| skill prec@10 | assessment-score MAE (coverage) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def metric(task: str, system: str, name: str) -> str:
        value = t[task]["metrics"].get(system, {}).get(name)
        if value is None:
            return "–"
        err = se[task].get(system, {}).get(name)
        return f"{value:.4f}" + (f" ± {err:.4f}" if err is not None else "")

    systems = list(dict.fromkeys([*MODELS, *t["courses"]["metrics"], *t["interests"]["metrics"]]))
    for s in systems:
        p = planted.get(s)
        community = f"{p['community_precision_at_10']:.4f} ± {pse[s]['community_precision_at_10']:.4f}" if p else "–"
        skill = f"{p['skill_precision_at_10']:.4f}" if p else "–"
        m = scores["metrics"].get(s)
        mae = f"{m['mae']:.4f} ± {scores['standard_errors'][s]['mae']:.4f} ({m['coverage']:.2f})" if m else "–"
        name = f"`{s}`"
        rows.append(f"| {name} | {metric('courses', s, 'ndcg_at_10')} | {metric('courses', s, 'hit_rate_at_10')} "
                    f"| {metric('interests', s, 'ndcg_at_10')} | {metric('assessments', s, 'ndcg_at_10')} "
                    f"| {community} | {skill} | {mae} |")
    refs = [s for s in scores["metrics"] if s not in systems]
    for s in refs:
        m = scores["metrics"][s]
        rows.append(f"| `{s}` | – | – | – | – | – | – | {m['mae']:.4f} ± {scores['standard_errors'][s]['mae']:.4f} |")
    return "\n".join(rows)


# --- benchmarks ----------------------------------------------------------------------------------

def bench_results() -> str:
    """benchmarks/results/results.json's tables (make bench), headings one level down."""
    lines = bench_render(_json(BENCH / "results" / "results.json")).rstrip("\n").splitlines()
    assert lines[0].startswith("# "), lines[0]
    return "\n".join(("#" + line) if line.startswith("## ") else line for line in lines[2:]).strip("\n")


def bench_scale() -> str:
    runs = _json(BENCH / "results" / "scale.json")["runs"]
    return "\n".join([scale_table(runs), "", "Seconds per stage (the generator's own report; with the Dask engine "
                      "search / reasons / write are summed over the partitions, which overlap: their wall time is in "
                      "brackets):", "", scale_stage_table(runs)])


def _largest_export_runs() -> tuple[dict | None, dict | None]:
    """The local and the Dask run of the largest ``make bench-scale`` export measurement."""
    runs = [r for r in _json(BENCH / "results" / "scale.json")["runs"].values() if r.get("sink") == "export"]
    if not runs:
        return None, None
    users = max(r["users"] for r in runs)
    by_engine = {r["engine"]: r for r in runs if r["users"] == users}
    return by_engine.get("local"), by_engine.get("dask")


#: The goal a whole run is measured against (docs/scaling.md).
GOAL = {"seconds": 1200, "peak_rss_mb": 8 * 1024, "recall_at_10": 0.95}


def floor_overridden(run: dict) -> str | None:
    """Why a ``make bench-scale`` run is not a result, or None: a run made with the recall floor
    lowered (``min_recall`` below the goal's) publishes lists a default run refuses."""
    floor = run.get("min_recall")
    if floor is None or floor >= GOAL["recall_at_10"]:
        return None
    low = {h: v for h, v in run["recall_at_10"].items() if v is not None and v < GOAL["recall_at_10"]}
    return (f"not a result: made with the recall floor overridden (MIN_RECALL={floor:g}); "
            + ", ".join(f"`{h}` recall@10 {v:.3f}" for h, v in low.items())
            + f" is below {GOAL['recall_at_10']:g}, which a default run refuses to publish")


def scale_measured() -> str:
    """docs/scaling.md's measured table: the largest export run, local and Dask, stage by stage, against the goal."""
    local, dask = _largest_export_runs()
    if local is None:
        return "No `make bench-scale SCALE_SINK=export` run is recorded in `benchmarks/results/scale.json` yet."
    runs = [r for r in (local, dask) if r is not None]
    head = " | ".join(f"{r['engine']}{' ×' + str(r['workers']) if r['engine'] == 'dask' else ''}" for r in runs)
    measured = ("; ".join(f"{r['engine']} {r['measured_at'][:10]} at `{r['commit']}`" for r in runs)
                if len({(r["measured_at"][:10], r["commit"]) for r in runs}) > 1
                else f"{local['measured_at'][:10]} at `{local['commit']}`")
    rows = [f"{local['users']:,} users, `--search {local['search']}`, `--sink export`, measured "
            f"{measured} (load average during the runs: "
            + "; ".join(f"{r['engine']} {r['loadavg_1min']['mean']} mean, {r['loadavg_1min']['max']} max" for r in runs)
            + ").", "", f"| stage | {head} |", "| --- |" + " ---: |" * len(runs)]
    rows.append("| load + validate | " + " | ".join(f"{r['stages']['load']:,.1f} s" for r in runs) + " |")
    for handle, m in local["stages"]["models"].items():
        cells = []
        for r in runs:
            s = r["stages"]["models"][handle]
            cells.append(f"{s['fit']:,.1f} / {s['search']:,.1f} / {s['explain']:,.1f} / {s.get('export', s.get('write')):,.1f}"
                         + (f" ({s['partitions']} partitions)" if s.get("partitions") else ""))
        rows.append(f"| `{handle}` fit / search ({m['search_method']}) / reasons / export, s | " + " | ".join(cells) + " |")
    rows.append("| recall@10, lowest model | " + " | ".join(
        f"{min(v for v in r['recall_at_10'].values() if v is not None):.4f}" for r in runs) + " |")
    rows.append("| a publishable run (default recall floor)? | " + " | ".join(
        f"**no**, {floor_overridden(r).split(': ', 1)[1]}" if floor_overridden(r) else "yes" for r in runs) + " |")
    rows.append("| **total** (goal ≤ 20 min) | " + " | ".join(
        f"**{_duration(r['total_seconds'])}** ({r['total_seconds']:,.0f} s)" for r in runs) + " |")
    rows.append("| peak RSS, whole process tree (goal ≤ 8 GB) | " + " | ".join(f"{r['peak_rss_mb']:,} MB" for r in runs) + " |")
    if all("peak_pss_mb" in r for r in runs):
        rows.append("| peak PSS, whole process tree (a page the workers share with the generator counted once) | "
                    + " | ".join(f"{r['peak_pss_mb']:,} MB" for r in runs) + " |")
    rows.append("| items exported | " + " | ".join(f"{r['items_written']:,}" for r in runs) + " |")
    if dask is not None and dask.get("compared_with"):
        rows.append("| same lists as the local run (lists checksums) | – | "
                    + ("**yes**, every model" if dask["compared_with"]["same_lists"] else "**no**: " + ", ".join(
                        h for h, ok in dask["compared_with"]["models"].items() if not ok)) + " |")
    loaded = local.get("dynamodb_local_load")
    if loaded:
        rows += ["", f"The local run's export loaded into DynamoDB Local by `similar-users-load`: {loaded['items']:,} items "
                 f"in {_duration(loaded['seconds'])} ({loaded['items_per_second']:,} items/s)."]
    met = [r["engine"] for r in runs if r["total_seconds"] <= GOAL["seconds"] and r["peak_rss_mb"] <= GOAL["peak_rss_mb"]
           and min(v for v in r["recall_at_10"].values() if v is not None) >= GOAL["recall_at_10"]]
    rows += ["", f"Goal (≤ 20 min, ≤ 8 GB, recall@10 ≥ 0.95 for every model) met at {local['users']:,} users by: "
             + (", ".join(met) if met else "neither run") + "."]
    return "\n".join(rows)


def _largest_dask_export_run() -> dict | None:
    """The Dask run of the largest ``make bench-scale SCALE_SINK=export`` measurement that has one."""
    runs = [r for r in _json(BENCH / "results" / "scale.json")["runs"].values()
            if r.get("sink") == "export" and r["engine"] == "dask"]
    return max(runs, key=lambda r: r["users"]) if runs else None


#: Cluster sizes of the 10,000,000-user estimate; the README quotes the middle one.
TEN_MILLION_WORKERS = (8, 32, 128)


def _short(handle: str) -> str:
    return f"`{handle.split('_')[0]}…{handle.split('_')[-1]}`"


def search_label(stage: dict) -> str:
    """How one model of a scale run searched: exact, the cluster index (probes), IVF, or exact after a missed pilot."""
    plan = stage.get("search_plan") or {}
    if plan.get("fallback"):
        return "exact (no index reached the floor)"
    if plan.get("index") == "clusters":
        return f"cluster index, {plan['probes']} of {plan['clusters']} probed"
    if plan.get("index"):
        return f"IVF, {plan.get('nprobe')} of {plan.get('nlist')} cells"
    return stage.get("search_method", "exact")


def run_stages(run: dict) -> dict[str, tuple[str, float]] | None:
    """A ``make bench-scale`` run's stages as (where it runs, seconds): the driver's in seconds, the
    partitions' in worker-seconds (summed over them); None for a run recorded before the search was
    prepared on the driver and queried in the partitions (its stages split otherwise)."""
    models = run["stages"]["models"]
    if not all("prepare" in m for m in models.values()):
        return None
    stages = {"load + validate": ("driver", run["stages"]["load"])}
    for handle, m in models.items():
        short = _short(handle)
        stages[f"fit {short}"] = ("driver", m["fit"])
        stages[f"prepare the search {short}"] = ("driver", m["prepare"])
        stages[f"queries {short}"] = ("partitions", max(0.0, m["search"] - m["prepare"]))
        stages[f"reasons {short}"] = ("partitions", m["explain"])
        stages[f"export {short}"] = ("partitions", m.get("export", m.get("write", 0.0)))
    return stages


def _search_kind(stage: dict) -> tuple:
    """Which search a model ran (index, exact fallback): stages scale alike only within one kind."""
    plan = stage.get("search_plan") or {}
    return plan.get("index"), bool(plan.get("fallback"))


def fitted_exponents(base: dict) -> tuple[dict[str, float], list[int]]:
    """Each stage's exponent b in seconds ~ users^b, fitted (least squares on logs) over the local
    export runs of at least 100,000 users, and the sizes fitted on; a model's search stages (prepare,
    queries) only over the runs in which it searched as in ``base`` (the same index, or exact: they
    are not fitted across a switch of method)."""
    runs = [r for r in _json(BENCH / "results" / "scale.json")["runs"].values()
            if r.get("sink") == "export" and r["engine"] == "local" and r["users"] >= 100_000
            and run_stages(r) is not None and not floor_overridden(r)]
    kinds = {_short(h): _search_kind(m) for h, m in base["stages"]["models"].items()}
    sizes: set[int] = set()
    points: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        same = {_short(h) for h, m in r["stages"]["models"].items() if _search_kind(m) == kinds.get(_short(h))}
        for name, (_, seconds) in run_stages(r).items():
            model = name.rsplit(" ", 1)[-1]
            searched = name.startswith(("prepare the search", "queries"))
            if seconds > 0 and (not searched or model in same):
                points.setdefault(name, []).append((math.log(r["users"]), math.log(seconds)))
                sizes.add(r["users"])
    return {name: _slope(pts) for name, pts in points.items() if len({u for u, _ in pts}) >= 2}, sorted(sizes)


def _slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of y on x."""
    mx, my = (sum(v) / len(points) for v in zip(*points))
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def ten_million() -> dict | None:
    """10,000,000 users on N Dask workers, worked out stage by stage from the largest measured Dask run:
    each stage scaled by the exponent fitted over the measured sizes (:func:`fitted_exponents`)."""
    candidates = [r for r in _json(BENCH / "results" / "scale.json")["runs"].values()
                  if r.get("sink") == "export" and r["engine"] == "dask" and run_stages(r) is not None]
    if not candidates:
        return None
    run = max(candidates, key=lambda r: r["users"])
    exponents, sizes = fitted_exponents(run)
    target, users = 10_000_000, run["users"]
    # (stage, where, measured seconds, (factor, rule)); "partitions": worker-seconds summed over them.
    stages: list[tuple[str, str, float, tuple[float, str]]] = []
    for name, (where, seconds) in run_stages(run).items():
        b = exponents.get(name)
        rule = f"× users^{b:.2f} (fitted)" if b is not None else "× users (not fitted: one size of this search)"
        stages.append((name, where, seconds, ((target / users) ** (1.0 if b is None else b), rule)))
    total = {where: sum(seconds * factor for _, w, seconds, (factor, _) in stages if w == where)
             for where in ("driver", "partitions")}
    n = TEN_MILLION_WORKERS[1]
    return {"run": run, "users": users, "target": target, "stages": stages, "driver": total["driver"],
            "partitions": total["partitions"], "workers": n, "total": total["driver"] + total["partitions"] / n,
            "sizes": sizes}


def scale_10m() -> str:
    """docs/scaling.md's worked estimate of 10,000,000 users on N Dask workers, from the measured Dask run."""
    e = ten_million()
    if e is None:
        return ("No Dask export run with the search prepared on the driver is recorded in "
                "`benchmarks/results/scale.json` yet.")
    run, users, target, stages = e["run"], e["users"], e["target"], e["stages"]
    fitted = ", ".join(f"{u:,}" for u in e["sizes"]) or "none"
    rows = [f"From the {users:,}-user Dask run ({run['workers']} workers, `{run['commit']}`): driver stages in seconds, "
            f"partition stages in worker-seconds (summed over the partitions), each scaled to {target:,} users by the "
            f"exponent fitted on the local runs of {fitted} users (a search stage only over the runs in which that "
            "model searched the same way: index or exact); a cluster of N workers divides the partition stages by N, "
            "not the driver's.", "",
            f"| stage | runs on | measured at {users:,} | rule | {target:,} users |", "| --- | --- | ---: | --- | ---: |"]
    rows += [f"| {name} | {where} | {seconds:,.1f} s | {rule} | {_duration(seconds * factor)} |"
             for name, where, seconds, (factor, rule) in stages]
    rows += ["", "| workers N | driver | partitions ÷ N | whole run |", "| ---: | ---: | ---: | ---: |"]
    rows += [f"| {n} | {_duration(e['driver'])} | {_duration(e['partitions'] / n)} "
             f"| {_duration(e['driver'] + e['partitions'] / n)} |" for n in TEN_MILLION_WORKERS]
    n = e["workers"]
    name, where, seconds, (factor, _) = max(stages, key=lambda st: st[2] * st[3][0] / (n if st[1] == "partitions" else 1))
    rows += ["", f"The bound at {target:,} users on {n} workers: **{name}** ({where}, "
             f"{_duration(seconds * factor / (n if where == 'partitions' else 1))} of the run's {_duration(e['total'])})."]
    return "\n".join(rows)


def bench_search() -> str:
    results = _json(BENCH / "results" / "search.json")
    scale = _json(BENCH / "results" / "search-ann.json")
    return "\n".join([
        f"Measured {results['started']} – {results.get('finished', '?')} at commit `{results['commit']}`, "
        f"{results['cpus']} shared cores (load averages per step in `benchmarks/results/search.json`). Top-10 over all users, "
        "wall seconds; recall@10 against the exact search over all users.", "", search_table(results), "",
        f"At {scale['users']:,} users (`benchmarks/results/search-ann.json`, `--search {scale['search']}`), measured "
        f"{scale['started']} – {scale.get('finished', '?')} at commit `{scale['commit']}`, {scale['cpus']} shared cores "
        "(load averages per model in the JSON); each model searched in its own process, at the depth the run asks; "
        "recall@10 on the generator's 2,000-user sample against exact search:", "", search_ann_table(scale)])


def bench_search_sparse() -> str:
    """docs/search.md: the sparse models' exact search against ``auto``'s choice, per size measured."""
    parts = []
    for path in sorted((BENCH / "results").glob("search-sparse-*.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1])):
        r = _json(path)
        switch = r.get("auto_exact_max_users")
        parts += [f"At {r['users']:,} users (`benchmarks/results/{path.name}`, `--search {r['search']}`"
                  f"{f', AUTO_EXACT_MAX_USERS={switch:,}' if switch else ''}), measured {r['started']} – "
                  f"{r.get('finished', '?')} at commit `{r['commit']}`, {r['cpus']} shared cores:", "", search_ann_table(r), ""]
    return "\n".join(parts) or "No measurement yet."


def scaling_inputs() -> str:
    """docs/scaling.md's measured inputs: the all-users search at 100,000 users, in core-seconds."""
    results = _json(BENCH / "results" / "search.json")
    cores = results["cpus"]
    rows = ["| what (100,000 synthetic users) | measured | source |", "| --- | ---: | --- |"]
    for handle, e in results["models"].items():
        shape = f"{e['users']:,} users × {e['features']:,}"
        exact = e["exact_new"]["seconds"]
        rows.append(f"| exact search, `{handle}` ({e['kernel']}, {shape}) | {exact:.1f} s wall on {cores} cores "
                    f"= {exact * cores:.0f} core-s | `benchmarks/results/search.json` |")
    ann = _json(BENCH / "results" / "search-ann.json")
    for handle, e in ann["models"].items():
        if e["method"] == "ann":
            rows.append(f"| faiss IVF train + add + query + re-rank, `{handle}` ({e['users']:,} users × {e['features']:,}, "
                        f"depth {e['depth']}) | {e['seconds_total']:.0f} s wall, recall@10 {e['recall_at_10']:.3f}, "
                        f"load average {e['load_before']:.1f} | `benchmarks/results/search-ann.json` |")
    cover = _coverage()
    rows.append("| users answered per model (10,000 users) | "
                + ", ".join(f"`{h.split('_')[0]}…{h.split('_')[-1]}` {c / u:.0%}" for h, (c, u) in cover.items())
                + " | `benchmarks/results/results.json` |")
    return "\n".join(rows)


def bench_load() -> str:
    rows = ["| measured | code | users | rows read | seconds | CPU seconds | peak RSS | load average before / after |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in _json(BENCH / "results" / "load.json")[-1:]:  # the current loader
        rows.append(f"| {r['date']} | `{r['commit']}` | {r['users']:,} | {sum(r['rows_read'].values()):,} "
                    f"| {r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['peak_rss_mb']:,} MB "
                    f"| {r['load_before']} / {r['load_after']} |")
    return "\n".join(rows)


def bench_dnn_fit() -> str:
    rows = ["| users | batch | row-sparse | epochs | fit s | s/epoch | peak RSS | skill prec@10 | commit |",
            "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for key, r in _json(BENCH / "results" / "dnn_fit.json")["runs"].items():
        if not key.endswith("-after"):  # runs of earlier code
            continue
        skill = r.get("planted_truth", {}).get("skill_prec_at_10")
        rows.append(f"| {r['users']:,} | {r['batch_size']:,} | {'yes' if r.get('row_sparse_updates') else 'no'} "
                    f"| {r['epochs']} | {r['fit_seconds']:.1f} | {r['seconds_per_epoch']:.2f} "
                    f"| {r['process_peak_rss_mb']:,} MB | {skill if skill is not None else '–'} | `{r['commit']}` |")
    return "\n".join(rows)


def bench_write() -> str:
    w = _json(BENCH / "results" / "write.json")
    rows = [f"{w['items']:,} items, {w['threads']} threads, {w['cores']} cores, {w['date']}; medians of "
            f"{len(next(iter(w['rounds'].values())))} alternating rounds.", "",
            "| write path | items/s | client µs / item | DynamoDB Local µs / item | its SQLite thread µs / item |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name, m in w["median"].items():
        rows.append(f"| {name} | {m['items_per_second']:,} | {m['client_us_per_item']:.0f} | {m['jvm_us_per_item']:.0f} "
                    f"| {m['sqlite_thread_us_per_item']:.0f} |")
    return "\n".join(rows)


def bench_fusion_export() -> str:
    """The ensemble's fusion and every model's reasons at 100,000 users, and the export's CPU per item."""
    fusion = _json(BENCH / "results" / "fusion_reasons.json")
    export = _json(BENCH / "results" / "export.json")
    lines = [f"Fusion and reasons: {fusion['users']:,} users (`{fusion['data_dir']}`), {fusion['cpus']} shared cores, "
             f"{fusion['date']} UTC, median of {len(next(iter(fusion['rounds'].values())))} rounds after a warm-up "
             "(`benchmarks/results/fusion_reasons.json`); the last column scales linearly to 1,000,000 users.", "",
             "| stage | seconds | load average (1 min) | seconds at 1,000,000 users (linear) |", "| --- | ---: | ---: | ---: |"]
    for name, figures in fusion["median"].items():
        lines.append(f"| {name} | {_n(figures['seconds'], 2)} | {_n(figures['loadavg_1m_start'], 1)} | "
                     f"{_n(figures['seconds_at_1m_users_linear'], 0)} |")
    lines += ["", f"Export (`benchmarks/results/export.json`, {export['items']:,} items of {', '.join(export['models'])} "
              f"with reasons, {export['date']} UTC): build + serialise + gzip, client CPU per item.", "",
              "| writer | items/s | client µs per item | gzip bytes per item | load average (1 min) |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name, figures in export["median"].items():
        lines.append(f"| {name} | {_n(figures['items_per_second'])} | {_n(figures['client_us_per_item'], 1)} | "
                     f"{_n(figures['gzip_bytes_per_item'], 1)} | {_n(figures['loadavg_1m_start'], 1)} |")
    return "\n".join(lines)


def bench_saturation() -> str:
    """The same-minute comparison of ``MAX_IN_FLIGHT`` bounds under the overload phase (benchmarks/bench_saturation.py)."""
    sat = _json(BENCH / "results" / "saturation.json")
    rounds = max(r["round"] for r in sat["runs"])
    lines = [f"{sat['connections']} closed-loop connections of wrk, {sat['seconds']:g} s per run, the bounds interleaved over "
             f"{rounds} rounds, a fresh server ({sat['workers']} gevent workers) per run, {sat['users']:,} users, "
             f"{sat['date']} UTC, commit {sat['commit']} (`benchmarks/results/saturation.json`); medians of the rounds. "
             "*Answered*: 2xx answers, each answer's own time; */health*: probes on a fresh connection during the load.", "",
             "| `MAX_IN_FLIGHT` | answered/s | answered p50 ms | answered p99 ms | answered max ms | shed | timeouts "
             "| /health p50 ms | /health max ms | load average |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for bound, m in sat["median"].items():
        lines.append(f"| {bound} | {_n(m['answered_per_second'])} | {_n(m['answered_p50_ms'], 1)} | {_n(m['answered_p99_ms'], 1)} | "
                     f"{_n(m['answered_max_ms'])} | {100 * m['shed_share']:.1f}% | {_n(m['timeouts'])} | "
                     f"{_n(m['health_p50_ms'], 1)} | {_n(m['health_max_ms'])} | {_n(m['loadavg_start'], 1)} |")
    return "\n".join(lines)


def performance_summary() -> str:
    """The README's summary: measured runs first, then the one extrapolated figure, each labelled."""
    res = _json(BENCH / "results" / "results.json")
    g = res["sizes"][0]["generator"]
    paced = next(p for p in res["sizes"][0]["api"]["load"] if p.get("delay_ms") and p["connections"] > 1)
    misses = next(p for p in res["sizes"][0]["api"]["load"] if p.get("rounds"))
    overhead = res["sizes"][0]["api"]["overhead"]
    ratios = sorted(overhead["rounds_p50_vs_client_get_item"])
    runs = _json(BENCH / "results" / "scale.json")["runs"]
    lines = ["| | what | figure | source |", "| --- | --- | --- | --- |",
             f"| measured | generator, {res['sizes'][0]['users']:,} users, all six models, into DynamoDB Local "
             f"| {g['total_seconds']:.0f} s ({g['wall_seconds']:.0f} s wall with imports), "
             f"{g['items_written']:,} items at {g['write_items_per_second']:,.0f} items/s, peak RSS "
             f"{g['peak_rss_mb']:,.0f} MB | `benchmarks/results/results.json` |"]
    for key in sorted(runs, key=lambda k: (runs[k]["users"], runs[k]["engine"])):
        r = runs[key]
        engine = r["engine"] + (f" ×{r['workers']}" if r.get("workers") else "")
        what = (f"generator, {r['users']:,} users, {engine} engine, `--search {r['search']}`, "
                f"`--sink {r.get('sink', 'write')}`")
        overridden = floor_overridden(r)
        if overridden:
            lines.append(f"| **{overridden.split(':')[0]}** | {what} | {overridden.split(': ', 1)[1]} "
                         f"| `benchmarks/results/scale.json` |")
            continue
        recalls = "; ".join(f"{_short(h)} {r['recall_at_10'][h]:.3f} {search_label(m)}"
                            for h, m in r["stages"]["models"].items() if r["recall_at_10"].get(h) is not None)
        lines.append(f"| measured | {what} "
                     f"| {_duration(r['total_seconds'])}, {r['items_written']:,} items at {r['items_per_second']:,} "
                     f"items/s, peak RSS {r['peak_rss_mb']:,} MB; recall@10 and method per model: {recalls} "
                     f"| `benchmarks/results/scale.json` |")
    lines += [
        f"| measured | API, item cache on, 4 connections paced | {paced['requests_per_second']:,.0f} requests/s, "
        f"p50 {paced['p50_ms']:.2f} ms, p99 {paced['p99_ms']:.2f} ms | `benchmarks/results/results.json` |",
        f"| measured | API on an item-cache miss, 1 connection | p50 {misses['p50_ms']:.2f} ms, "
        f"{overhead['p50_vs_client_get_item']:.2f}× a raw boto3 `get_item` (median of {len(ratios)} rounds, "
        f"{ratios[0]:.2f}×–{ratios[-1]:.2f}×) | `benchmarks/results/results.json` |",
    ]
    estimate = ten_million()
    if estimate is not None:
        caveat = "; that run is itself not a result: its recall floor was overridden" if floor_overridden(estimate["run"]) else ""
        lines.append(f"| **extrapolated** | generator, 10,000,000 users, Dask, {estimate['workers']} workers | "
                     f"~{_duration(estimate['total'])} (not run; from the {estimate['users']:,}-user Dask run{caveat}) | "
                     "[Scaling](docs/scaling.md#10-million-users-on-a-dask-cluster-of-n-workers-worked-from-the-measured-run) |")
    return "\n".join(lines)


def ab_demo() -> str:
    r = _json(AB_DEMO)
    rows = ["| variant | model | exposed users | exposures | impressions | clicks | follows | CTR (95% interval) "
            "| lift | p-value |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for v in r["variants"]:
        control = " (control)" if v["variant"] == r["control"] else ""
        ci = f" ({v['ctr_low']:.4f}–{v['ctr_high']:.4f})" if v.get("ctr_low") is not None else ""
        lift = f"{v['lift']:+.1%}" if v.get("lift") is not None else ""
        p = f"{v['p_value']:.1e}" if v.get("p_value") is not None else ""
        rows.append(f"| {v['variant']}{control} | `{v['model_handle']}` | {v['exposed_users']:,} | {v['exposures']:,} "
                    f"| {v['impressions']:,} | {v['events'].get('click', 0):,} | {v['events'].get('follow', 0):,} "
                    f"| {v['ctr']:.4f}{ci} | {lift} | {p} |")
    sr = r["sample_ratio"]
    rows += ["", f"Sample ratio {'MISMATCH' if sr['mismatch'] else 'ok'} "
             f"({' vs '.join(f'{n:,}' for n in sr['observed'].values())} assigned users, p = {sr['p_value']:.2f}). "
             f"{r['verdict']}"]
    return "\n".join(rows)


RENDERERS: dict[str, Callable[[], str]] = {
    "configuration": configuration, "key-settings": key_settings, "exit-codes": exit_codes,
    "models-at-a-glance": models_at_a_glance, "evaluation": evaluation, "performance-summary": performance_summary,
    "bench-results": bench_results, "bench-scale": bench_scale, "bench-search": bench_search,
    "bench-load": bench_load, "bench-dnn-fit": bench_dnn_fit, "bench-write": bench_write,
    "ab-demo": ab_demo, "scaling-inputs": scaling_inputs,
    "scale-measured": scale_measured, "scale-10m": scale_10m, "bench-fusion-export": bench_fusion_export,
    "bench-saturation": bench_saturation, "bench-search-sparse": bench_search_sparse,
}


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def render_text(text: str, seen: set[str]) -> str:
    def block(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise SystemExit(f"error: no renderer for the generated block {name!r}")
        seen.add(name)
        return f"{match.group(1)}{RENDERERS[name]().rstrip()}\n{match.group(4)}"

    return BLOCK.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    seen: set[str] = set()
    stale = []
    for path in documents():
        text = path.read_text()
        new = render_text(text, seen)
        if new != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(new)
    missing = set(RENDERERS) - seen
    if missing:
        print(f"error: generated blocks missing from README.md and docs/: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    for path in stale:
        print(f"{'out of date' if args.check else 'rendered'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
