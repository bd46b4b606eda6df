"""Load the four CSV tables, validate types and normalise values.

Bad input must stop the batch job *before* anything reaches the database, with one line that
names the file, the column and (where there is one) the row, so an operator can fix the export
without reading a traceback.  Rows that are merely unusable (duplicates, empty tags,
non-positive view time, unknown level) are dropped and counted instead, because the real
exports contain such rows and one of them should not cost a night's run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.data.schema import COLUMNS, FILES, LEVELS
from recommender.data.sources import local_folder

log = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """An input problem that cannot be repaired by dropping rows."""

    def __init__(self, path: Path | str, message: str, column: str | None = None, row: int | None = None):
        self.path = str(path)
        self.column = column
        self.row = row
        where = self.path
        if column:
            where += f": column '{column}'"
        if row is not None:
            where += f", row {row}"
        self.message = message
        super().__init__(f"{where}: {message}")

    def relocated(self, path: str) -> DataValidationError:
        """The same error, naming ``path`` (e.g. the S3 object a temporary file came from)."""
        return DataValidationError(path, self.message, column=self.column, row=self.row)


@dataclass
class Tables:
    """The validated tables plus what was dropped, for the run summary."""

    user_interests: pd.DataFrame
    user_course_views: pd.DataFrame
    user_assessment_scores: pd.DataFrame
    course_tags: pd.DataFrame
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataValidationError(path, "file not found")
    required = COLUMNS[name]
    try:
        header = pd.read_csv(path, nrows=0).columns
    except pd.errors.EmptyDataError:
        raise DataValidationError(path, "file is empty (no header row)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError(path, f"not a readable CSV file ({exc.__class__.__name__})") from None
    header = [str(c).strip() for c in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataValidationError(path, "required column missing", column=missing[0])
    try:
        frame = pd.read_csv(
            path,
            usecols=lambda c: str(c).strip() in required,
            dtype=str,
            keep_default_na=False,
            na_values=[],
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError(path, f"not a readable CSV file: {exc}".splitlines()[0]) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame[list(required)]


def _first_bad_row(mask: np.ndarray) -> int:
    """CSV line number (header is line 1) of the first True in ``mask``."""
    return int(np.flatnonzero(mask)[0]) + 2


def _integers(frame: pd.DataFrame, column: str, path: Path, *, positive: bool) -> pd.Series:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna().to_numpy() | (values.to_numpy(dtype=float, na_value=np.nan) % 1 != 0)
    if positive:
        bad |= ~(values.to_numpy(dtype=float, na_value=np.nan) > 0)
    if bad.any():
        row = _first_bad_row(bad)
        raw = frame[column].iloc[row - 2]
        kind = "a positive integer" if positive else "an integer"
        raise DataValidationError(path, f"value {raw!r} is not {kind}", column=column, row=row)
    return values.astype(np.int64)


def _numbers(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = _first_bad_row(bad)
        raw = frame[column].iloc[row - 2]
        raise DataValidationError(path, f"value {raw!r} is not a number", column=column, row=row)
    return values.astype(np.float64)


def _dates(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = pd.to_datetime(frame[column].str.strip(), errors="coerce", format="ISO8601")
    bad = values.isna().to_numpy()
    if bad.any():
        row = _first_bad_row(bad)
        raw = frame[column].iloc[row - 2]
        raise DataValidationError(path, f"value {raw!r} is not a date", column=column, row=row)
    return values


def _tags(series: pd.Series) -> pd.Series:
    return series.str.strip().str.lower()


class _Dropper:
    """Drops rows by reason and remembers the counts for the log and the run summary."""

    def __init__(self, name: str):
        self.name = name
        self.counts: dict[str, int] = {}

    def drop(self, frame: pd.DataFrame, mask: pd.Series | np.ndarray, reason: str) -> pd.DataFrame:
        count = int(np.asarray(mask).sum())
        if count:
            self.counts[reason] = self.counts.get(reason, 0) + count
            frame = frame.loc[~np.asarray(mask)]
        return frame

    def drop_duplicates(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.drop(frame, frame.duplicated().to_numpy(), "exact duplicate row")


def _load_interests(path: Path, dropper: _Dropper) -> pd.DataFrame:
    frame = _read_csv(path, "user_interests")
    frame["user_handle"] = _integers(frame, "user_handle", path, positive=True)
    frame["date_followed"] = _dates(frame, "date_followed", path)
    frame["interest_tag"] = _tags(frame["interest_tag"])
    frame = dropper.drop(frame, frame["interest_tag"].eq(""), "empty interest_tag")
    return dropper.drop_duplicates(frame)


def _load_views(path: Path, dropper: _Dropper) -> pd.DataFrame:
    frame = _read_csv(path, "user_course_views")
    frame["user_handle"] = _integers(frame, "user_handle", path, positive=True)
    frame["view_date"] = _dates(frame, "view_date", path)
    frame["author_handle"] = frame["author_handle"].str.strip()
    frame["course_id"] = frame["course_id"].str.strip()
    frame["view_time_seconds"] = _numbers(frame, "view_time_seconds", path)
    level = frame["level"].str.strip().str.capitalize()
    frame["level"] = level
    frame = dropper.drop(frame, frame["course_id"].eq(""), "empty course_id")
    frame = dropper.drop(frame, ~frame["view_time_seconds"].gt(0), "non-positive view_time_seconds")
    frame = dropper.drop(frame, ~frame["level"].isin(LEVELS), "unknown level")
    return dropper.drop_duplicates(frame)


def _load_assessments(path: Path, dropper: _Dropper) -> pd.DataFrame:
    frame = _read_csv(path, "user_assessment_scores")
    frame["user_handle"] = _integers(frame, "user_handle", path, positive=True)
    frame["user_assessment_date"] = _dates(frame, "user_assessment_date", path)
    frame["assessment_tag"] = _tags(frame["assessment_tag"])
    frame["user_assessment_score"] = _numbers(frame, "user_assessment_score", path)
    frame = dropper.drop(frame, frame["assessment_tag"].eq(""), "empty assessment_tag")
    return dropper.drop_duplicates(frame)


def _load_course_tags(path: Path, dropper: _Dropper) -> pd.DataFrame:
    frame = _read_csv(path, "course_tags")
    frame["course_id"] = frame["course_id"].str.strip()
    frame["course_tags"] = _tags(frame["course_tags"])
    frame = dropper.drop(frame, frame["course_id"].eq(""), "empty course_id")
    frame = dropper.drop(frame, frame["course_tags"].eq(""), "empty course_tags")
    return dropper.drop_duplicates(frame)


_LOADERS = {
    "user_interests": _load_interests,
    "user_course_views": _load_views,
    "user_assessment_scores": _load_assessments,
    "course_tags": _load_course_tags,
}


def load_table(data_dir: Path | str, name: str) -> tuple[pd.DataFrame, dict[str, int], int]:
    """Load one table: (clean frame, dropped counts by reason, rows read)."""
    path = Path(data_dir) / FILES[name]
    dropper = _Dropper(name)
    frame = _LOADERS[name](path, dropper)
    rows_read = len(frame) + sum(dropper.counts.values())
    frame = frame.reset_index(drop=True)
    reasons = ", ".join(f"{n:,} {r}" for r, n in dropper.counts.items()) or "none"
    log.info("%s: read %s rows, kept %s, dropped: %s", path, f"{rows_read:,}", f"{len(frame):,}", reasons)
    return frame, dropper.counts, rows_read


def load_tables(data_dir: Path | str, names: tuple[str, ...] | None = None, *, s3_endpoint_url: str | None = None) -> Tables:
    """Load and validate the four tables from ``data_dir`` (all of them unless ``names`` says).

    ``data_dir`` is a folder or an ``s3://bucket/prefix`` URL.

    Tables not asked for come back empty with their columns, so a generator that runs only
    the interest model does not fail on a missing views export.
    """
    wanted = tuple(n for n in FILES if names is None or n in names)
    frames: dict[str, pd.DataFrame] = {n: pd.DataFrame(columns=list(COLUMNS[n])) for n in FILES}
    dropped: dict[str, dict[str, int]] = {}
    rows_read: dict[str, int] = {}
    with local_folder(data_dir, wanted, s3_endpoint_url) as folder:
        for name in wanted:
            try:
                frames[name], dropped[name], rows_read[name] = load_table(folder, name)
            except DataValidationError as exc:
                if folder != Path(data_dir):  # name the S3 object, not the temporary copy
                    raise exc.relocated(f"{str(data_dir).rstrip('/')}/{FILES[name]}") from None
                raise
    return Tables(**frames, dropped=dropped, rows_read=rows_read)
