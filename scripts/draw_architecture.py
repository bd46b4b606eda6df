#!/usr/bin/env python
"""Draw the architecture picture and save it to ``docs/images/architecture.png``.

The picture is made by this script, not by hand in a drawing tool, so it is reviewed and
changed together with the code it describes, and anyone can regenerate it with
``make diagram`` (matplotlib only, Agg backend, no network).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

from recommender.models.registry import MODELS  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "architecture.png"

W, H = 16.0, 10.5  # figure size in inches; axes use the same units
DPI = 100  # 1600 x 1050 px

LANE_FILL = {"batch": "#f3f7fc", "serve": "#f4faf3"}
LANE_EDGE = {"batch": "#8fb3d9", "serve": "#93c48b"}
BOX_FILL = {
    "data": "#fff4dc",
    "step": "#e3eefa",
    "model": "#ffffff",
    "store": "#fde8e4",
    "api": "#e2f3df",
    "client": "#eeeeee",
    "gen": "#ffffff",
}
EDGE = "#44546a"
TEXT = "#1b2430"
CAPTION = "#4a5566"


def box(ax, x, y, w, h, title, body="", kind="step", dashed=False, title_size=11, body_size=9,
        step=None):
    """A rounded box with a bold title and an optional smaller body, both centred."""
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h,
            boxstyle="round,pad=0,rounding_size=0.12",
            facecolor=BOX_FILL[kind], edgecolor=EDGE,
            linewidth=1.3, linestyle=(0, (5, 3)) if dashed else "-",
            zorder=2,
        )
    )
    # Centre the title + body block vertically (line height = size / 72 * linespacing inches).
    t_lines, b_lines = title.count("\n") + 1, (body.count("\n") + 1) if body else 0
    t_h = t_lines * title_size / 72 * 1.2
    b_h = b_lines * body_size / 72 * 1.3
    sep = 0.14 if body else 0.0
    top = y + h / 2 + (t_h + sep + b_h) / 2
    cx = x + w / 2
    ax.text(cx, top, title, ha="center", va="top", fontsize=title_size, fontweight="bold",
            color=TEXT, zorder=3, linespacing=1.2)
    if body:
        ax.text(cx, top - t_h - sep, body, ha="center", va="top", fontsize=body_size,
                color=CAPTION, zorder=3, linespacing=1.3)
    if step is not None:
        badge(ax, x, y + h, step)


def badge(ax, x, y, step):
    """A small numbered circle on a box's top-left corner."""
    ax.add_patch(Circle((x + 0.05, y - 0.05), 0.17, facecolor=EDGE, edgecolor="white",
                        linewidth=1.2, zorder=6))
    ax.text(x + 0.05, y - 0.055, str(step), ha="center", va="center", fontsize=9.5,
            fontweight="bold", color="white", zorder=7)


def arrow(ax, start, end, label="", label_xy=None, style="-|>", dashed=False, color=EDGE, ha="center"):
    """A straight arrow from ``start`` to ``end`` with an optional small label."""
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle=style, mutation_scale=16, linewidth=1.6, color=color,
            linestyle=(0, (4, 3)) if dashed else "-", shrinkA=0, shrinkB=0, zorder=4,
        )
    )
    if label:
        if label_xy is None:
            label_xy = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.15)
        ax.text(*label_xy, label, ha=ha, va="bottom", fontsize=8.5, color=CAPTION,
                style="italic", zorder=5)


def lane(ax, x, y, w, h, kind, title, subtitle):
    ax.add_patch(
        FancyBboxPatch(
            (x, y), w, h, boxstyle="round,pad=0,rounding_size=0.2",
            facecolor=LANE_FILL[kind], edgecolor=LANE_EDGE[kind], linewidth=1.5, zorder=0,
        )
    )
    ax.text(x + 0.2, y + h - 0.15, title, ha="left", va="top", fontsize=13,
            fontweight="bold", family="monospace", color=TEXT, zorder=1)
    ax.text(x + 0.2, y + h - 0.5, subtitle, ha="left", va="top", fontsize=9.5,
            color=CAPTION, zorder=1)


def draw() -> plt.Figure:
    fig = plt.figure(figsize=(W, H), dpi=DPI, facecolor="white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, W)
    ax.set_ylim(0, H)
    ax.axis("off")

    ax.text(W / 2, H - 0.18, "Similar-users recommender: architecture", ha="center", va="top",
            fontsize=16, fontweight="bold", color=TEXT)

    # ---- lanes -------------------------------------------------------------------------------
    lane(ax, 0.15, 3.55, W - 0.3, 6.35, "batch", "run_generator.py  (batch, scheduled)",
         "fits every model, searches each user's top-N similar users with reasons, publishes the run; steps 1-6")
    lane(ax, 0.15, 0.15, W - 0.3, 3.2, "serve", "online service",
         "answers from the stored neighbour lists only")

    # ---- batch lane: steps 1-6, left to right -----------------------------------------------
    by, bh = 3.95, 4.5  # row of the batch lane that holds the step boxes
    mid = by + bh / 2  # y of the horizontal arrows
    cols = {  # name: (x, width)
        "csv": (0.4, 2.2),
        "data": (3.0, 1.85),
        "feat": (5.25, 1.9),
        "models": (7.55, 3.45),
        "topk": (11.4, 1.85),
        "store": (13.65, 2.15),
    }
    sh = 2.0  # height of the plain step boxes

    x, w = cols["csv"]
    csv_y, csv_h = mid - 1.3, 2.3
    box(ax, x, csv_y, w, csv_h, "4 CSV tables\nin DATA_DIR",
        "user_interests\nuser_course_views\nuser_assessment_scores\ncourse_tags", kind="data", step=1)
    gen_y = csv_y + csv_h + 0.35
    box(ax, x, gen_y, w, 0.8, "recommender_tools.datagen", "synthetic, seeded", kind="gen", dashed=True,
        title_size=9.5, body_size=8.5)
    arrow(ax, (x + w / 2, gen_y), (x + w / 2, csv_y + csv_h), dashed=True)

    x, w = cols["data"]
    box(ax, x, mid - sh / 2, w, sh, "recommender\n.data",
        "load + validate\n\nbad input \u2192\nexit 2, one line", step=2)

    x, w = cols["feat"]
    box(ax, x, mid - sh / 2, w, sh, "recommender\n.features", "sparse\nuser \u00d7 item\nmatrices", step=3)

    # models: an outer box holding one box per registered model
    x, w = cols["models"]
    my0, mh0 = by - 0.05, bh + 0.4
    ax.add_patch(FancyBboxPatch((x, my0), w, mh0, boxstyle="round,pad=0,rounding_size=0.12",
                                facecolor=BOX_FILL["step"], edgecolor=EDGE, linewidth=1.3, zorder=1))
    badge(ax, x, my0 + mh0, 4)
    ax.text(x + w / 2, my0 + mh0 - 0.13, "recommender.models", ha="center", va="top",
            fontsize=11, fontweight="bold", color=TEXT, zorder=3)
    models = [(spec.handle, spec.description.split(":")[0]) for spec in MODELS]  # the registry's list
    gap = 0.13
    mh = min(0.78, (mh0 - 0.6 - gap * (len(models) - 1)) / len(models))
    handle_size = 8.8 if len(models) <= 6 else 7.5
    top = my0 + mh0 - 0.5
    for i, (handle, what) in enumerate(models):
        y = top - (i + 1) * mh - i * gap
        ax.add_patch(FancyBboxPatch((x + 0.12, y), w - 0.24, mh, boxstyle="round,pad=0,rounding_size=0.08",
                                    facecolor=BOX_FILL["model"], edgecolor=EDGE, linewidth=1.0, zorder=2))
        ax.text(x + w / 2, y + mh / 2 + 0.05, handle, ha="center", va="bottom", fontsize=handle_size,
                family="monospace", fontweight="bold", color=TEXT, zorder=3)
        ax.text(x + w / 2, y + mh / 2 - 0.05, what, ha="center", va="top", fontsize=7.2,
                color=CAPTION, zorder=3)

    x, w = cols["topk"]
    box(ax, x, mid - sh / 2 + 0.6, w, sh + 0.4, "recommender\n.topk",
        "all-users top-N:\nexact (posting lists,\nBLAS blocks) or\nclusters / IVF +\nrecall floor;\nreasons", step=5)
    box(ax, x, mid - sh / 2 - 1.05, w, 1.2, "ENGINE=dask", "partitions search,\nexplain and write", kind="gen",
        dashed=True, title_size=9.5, body_size=8.5)

    x, w = cols["store"]
    st_y, st_h = mid - 0.55, 2.3
    box(ax, x, st_y, w, st_h, "recommender\n.store",
        "run table per run\nsimilar_users-<run_id>\n(user_handle, model_handle)\n\npointers + lock in\nsimilar_users-control", kind="store", step=6)
    read_x = x + 0.25  # where the API's read arrow leaves the store
    ax.text(x + w - 0.05, st_y + st_h + 0.3, "DynamoDB Local (dev/CI)\nor AWS DynamoDB (prod)", ha="right",
            va="bottom", fontsize=8.5, color=CAPTION, style="italic", zorder=3)
    # the S3 road: the run exported as files, then loaded by DynamoDB's ImportTable
    s3_y, s3_h = by + 0.05, 1.45
    s3_x = x + 0.5
    box(ax, s3_x, s3_y, x + w - s3_x, s3_h, "S3 export / import", "--sink export: files in S3\n--sink import:\nImportTable \u2192 run table",
        kind="data", dashed=True, title_size=9.5, body_size=8.5)
    arrow(ax, (x + w - 0.35, s3_y + s3_h), (x + w - 0.35, st_y), dashed=True)

    def right(c):
        return cols[c][0] + cols[c][1]

    arrow(ax, (right("csv"), mid), (cols["data"][0], mid))
    arrow(ax, (right("data"), mid), (cols["feat"][0], mid))
    arrow(ax, (right("feat"), mid), (cols["models"][0], mid))
    arrow(ax, (right("models"), mid), (cols["topk"][0], mid))
    arrow(ax, (right("topk"), mid + 0.6), (cols["store"][0], mid + 0.6))
    arrow(ax, (right("topk"), mid - 0.2), (cols["store"][0] + 0.5, by + 0.05 + 0.9), dashed=True)

    # ---- serving lane ------------------------------------------------------------------------
    api_x, api_w = 3.0, 11.05
    api_y, api_h = 0.45, 1.95
    box(ax, api_x, api_y, api_w, api_h,
        "run_server.py / gunicorn \u2014 Flask app (recommender.api)",
        "POST /similar-users/   GET /similar-users/<id>   GET /models   POST /feedback   /explore\n"
        "/health   /metrics   /openapi.json   /docs\n"
        "A/B experiments (EXPERIMENTS_FILE) \u2192 exposures and events in DynamoDB;  no TensorFlow in the service",
        kind="api", title_size=12, body_size=10)

    cl_x, cl_w = 14.65, 1.15
    cl_y, cl_h = api_y + 0.2, api_h - 0.4
    box(ax, cl_x, cl_y, cl_w, cl_h, "clients", "curl,\nPostman,\nservices", kind="client")

    # DynamoDB -> API (reads); clients -> API (requests) and the answers back
    arrow(ax, (read_x, st_y), (read_x, api_y + api_h))
    ax.text(read_x - 0.12, 2.95, "pointer (cached) \u2192 GetItem (user, model)", ha="right", va="center", fontsize=8.5,
            color=CAPTION, style="italic")
    api_r = api_x + api_w
    arrow(ax, (cl_x, api_y + api_h / 2 + 0.25), (api_r, api_y + api_h / 2 + 0.25))
    arrow(ax, (api_r, api_y + api_h / 2 - 0.25), (cl_x, api_y + api_h / 2 - 0.25))
    ax.text((cl_x + api_r) / 2, api_y + api_h / 2, "HTTP", ha="center", va="center", fontsize=8.5,
            color=CAPTION, style="italic")

    ax.text(0.4, 0.3, "regenerate:\nmake diagram", ha="left", va="bottom", fontsize=8.5,
            color=CAPTION, family="monospace")
    return fig


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig = draw()
    fig.savefig(OUT, dpi=DPI, facecolor="white")
    plt.close(fig)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
