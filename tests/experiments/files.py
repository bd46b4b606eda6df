"""Experiments files for the tests, written from arguments rather than repeated TOML blocks."""

from __future__ import annotations

INTEREST, VIEWS, LEVEL = ("tfidf_user_interest", "knn_collab_filtering_user_course_view",
                          "dnn_collab_filtering_user_course_level")


def experiment_toml(name: str = "a", *, salt: str = "s1", status: str = "running",
                    start: str = "2026-01-01T00:00:00Z", end: str = "2027-01-01T00:00:00Z",
                    arms: tuple[tuple[str, str, str | float], ...] = (("interest", INTEREST, 1), ("views", VIEWS, 1)),
                    extra: str = "") -> str:
    """One ``[[experiment]]`` table; ``arms`` are (name, model, weight); ``extra`` adds raw lines."""
    lines = [f"[[experiment]]", f'name = "{name}"', f'salt = "{salt}"', f'status = "{status}"',
             f"start = {start}", f"end = {end}", extra, "arms = ["]
    lines += [f'  {{ name = "{arm}", model = "{model}", weight = {weight} }},' for arm, model, weight in arms]
    return "\n".join(lines + ["]", ""])
