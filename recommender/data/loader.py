"""Load the four CSV tables, validate types and normalise values.

Bad input must stop the batch job *before* anything reaches the database, with one line that
names the file, the column and (where there is one) the row, so an operator can fix the export
without reading a traceback.  Rows that are merely unusable (duplicates, empty tags,
non-positive view time, unknown level) are dropped and counted instead, because the real
exports contain such rows and one of them should not cost a night's run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.data import arrow_columns
from recommender.data.arrow_csv import CsvError, read_columns
from recommender.data.csv_lines import data_row_line
from recommender.data.duplicate_rows import duplicated, keep_rows
from recommender.data.preflight import os_reason
from recommender.data.schema import (
    COLUMNS, EARLIEST_DATE, FILES, FUTURE_DATE_SLACK_DAYS, LEVELS, MAX_TEXT_LENGTH, MAX_USER_HANDLE,
    MAX_VIEW_TIME_SECONDS, SCORE_RANGE,
)
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
    if path.is_dir():
        raise DataValidationError(path, "is a directory")
    if not path.exists():
        raise DataValidationError(path, "file not found")
    try:
        frame = read_columns(path, COLUMNS[name])
    except OSError as exc:
        raise DataValidationError(path, os_reason(exc)) from None
    except CsvError as exc:
        raise DataValidationError(path, exc.message, column=exc.column, row=exc.row) from None
    if frame.empty:
        raise DataValidationError(path, "no data rows")
    return frame


def _shown(raw: str) -> str:
    """The value as the message shows it: quoted, and cut when it is long."""
    if len(raw) <= 60:
        return repr(raw)
    return f"{raw[:40]!r}... ({len(raw):,} characters)"


Problem = tuple[np.ndarray, Callable[[str], str]]


def _stop_at_first(frame: pd.DataFrame, column: str, path: Path, problems: list[Problem]) -> None:
    """Raise for the earliest row that has any of ``problems`` (mask, message for the shown value).

    The row is the editor's line number (see :mod:`recommender.data.csv_lines`), computed only
    here, on the error path.
    """
    found = [(int(np.argmax(mask)), describe) for mask, describe in problems if mask.any()]
    if not found:
        return
    position, describe = min(found, key=lambda f: f[0])
    raw = str(frame[column].iloc[position])
    line = data_row_line(path, int(frame.index[position]))
    raise DataValidationError(path, describe(_shown(raw)), column=column, row=line)


def _not_positive(shown: str) -> str:
    return f"value {shown} is not a positive integer"


def _text(frame: pd.DataFrame, column: str) -> pa.ChunkedArray:
    """The column's stripped cells as Arrow strings (how every value is read: surrounding spaces never count)."""
    return arrow_columns.strings(arrow_columns.strip(frame[column]))


_HANDLE_TEXT = r"^\+?[0-9]+(?:\.0+)?$"  # digits; a fraction of zeros only (12.0) is the integer
_HANDLE_NOISE = r"^\+|\.0+$"
_MAX_HANDLE_DIGITS = len(str(MAX_USER_HANDLE))


def _handles(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """Positive int64 user handles, parsed as integers and never through a float.

    A column of plain digits is cast by pyarrow in one pass (a value over int64 is refused by the
    cast, not wrapped).  Anything else is normalised first: ``+7`` and ``12.0`` (a fraction of
    zeros only, as exports through a float column write it) are exactly 7 and 12, anything else
    that is not digits is refused, and so is a handle over int64.  pyarrow's own integer parsing
    is not given the rest: it would take ``0x10`` for 16.
    """
    text = _text(frame, column)
    if pc.all(pc.ascii_is_decimal(text)).as_py():  # false for "", "+7", "0x10", "12.0"
        values, refused = arrow_columns.parsed(text, lambda t: pc.cast(t, pa.int64()))
        if refused is None:
            handles = values.to_numpy()
            _stop_at_first(frame, column, path, [(handles <= 0, _not_positive)])
            return pd.Series(handles, index=frame.index, name=column, copy=False)
    well_formed = pc.match_substring_regex(text, _HANDLE_TEXT)
    digits = pc.utf8_ltrim(pc.replace_substring_regex(pc.if_else(well_formed, text, "0"), _HANDLE_NOISE, ""), "0")
    length = pc.binary_length(digits).to_numpy()
    too_big = (length > _MAX_HANDLE_DIGITS) | ((length == _MAX_HANDLE_DIGITS)
                                               & pc.greater(digits, str(MAX_USER_HANDLE)).to_numpy(zero_copy_only=False))
    _stop_at_first(frame, column, path, [
        (~well_formed.to_numpy(zero_copy_only=False) | (length == 0), _not_positive),
        (too_big, lambda shown: f"value {shown} is above the largest user handle, {MAX_USER_HANDLE}"),
    ])
    return pd.Series(pc.cast(digits, pa.int64()).to_numpy(), index=frame.index, name=column, copy=False)


def _numbers(frame: pd.DataFrame, column: str, path: Path, bounds: tuple[float, float] | None = None) -> pd.Series:
    """Finite float64 numbers (``inf``, ``nan``, ``1e400`` refused), within ``bounds`` if given."""
    text = _text(frame, column)
    parsed, refused = arrow_columns.parsed(text, lambda t: pc.cast(t, pa.float64()))
    values = parsed.to_numpy()
    if refused is not None:  # NaN from there on: "not a number" at the refused value, nothing after it
        values = np.concatenate([values, np.full(len(text) - refused, np.nan)])
    missing = np.isnan(values)
    problems: list[Problem] = [
        (missing, lambda shown: f"value {shown} is not a number"),
        (np.isinf(values), lambda shown: f"value {shown} is not a finite number"),
    ]
    if bounds is not None:
        low, high = bounds
        with np.errstate(invalid="ignore"):
            outside = ~missing & ((values < low) | (values > high))
        problems.append((outside, lambda shown: f"value {shown} is outside the accepted range {low:g}..{high:g}"))
    _stop_at_first(frame, column, path, problems)
    return pd.Series(values, index=frame.index, name=column, copy=False)


_TIMESTAMP, _UTC_TIMESTAMP = pa.timestamp("us"), pa.timestamp("us", tz="UTC")
#: A date and time followed by a zone (``Z``, ``+02:00``, ``-0430``, ``+02``): pyarrow reads such
#: a value only as a zoned timestamp, and one without a zone only as a naive one.
_ZONED = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ].*[Z+-]"


def _utc_microseconds(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO 8601 dates and date-times as naive UTC timestamps (µs), by pyarrow's own parser;
    ``ArrowInvalid`` if it refuses a value."""
    try:
        return pc.cast(text, _TIMESTAMP)  # the usual export: no zone anywhere
    except pa.ArrowInvalid:
        zoned = pc.match_substring_regex(text, _ZONED)
        if not pc.any(zoned).as_py():
            raise
    where = zoned.to_numpy(zero_copy_only=False)
    micros = np.empty(len(text), dtype=np.int64)
    micros[~where] = pc.cast(pc.cast(text.filter(pc.invert(zoned)), _TIMESTAMP), pa.int64()).to_numpy()
    micros[where] = pc.cast(pc.cast(text.filter(zoned), _UTC_TIMESTAMP), pa.int64()).to_numpy()
    return pa.chunked_array([pa.array(micros.view("datetime64[us]"), type=_TIMESTAMP)])


def _dates(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """ISO 8601 dates as naive UTC: a date with an offset is converted, one without is UTC.

    One rule for every row, so that ``2019-07-31T10:00:00Z`` among plain dates loads instead
    of failing on mixed time zones, and all dates compare on one clock.
    """
    latest = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=FUTURE_DATE_SLACK_DAYS)
    low, high = pd.Timestamp(EARLIEST_DATE, tz="UTC").value // 1_000, latest.value // 1_000  # µs since the epoch
    text = _text(frame, column)
    parsed, refused = arrow_columns.parsed(text, _utc_microseconds)
    values = parsed.to_numpy().astype("datetime64[us]", copy=False)
    missing = np.zeros(len(text), dtype=bool)
    if refused is not None:
        missing[refused] = True
        values = np.concatenate([values, np.zeros(len(text) - refused, dtype=values.dtype)])
    micros = values.view(np.int64)
    outside = ~missing & ((micros < low) | (micros > high))
    _stop_at_first(frame, column, path, [
        (missing, lambda shown: f"value {shown} is not a date"),
        (outside, lambda shown: f"value {shown} is not between {EARLIEST_DATE} and one day after the run "
                                f"({latest:%Y-%m-%d %H:%M} UTC)"),
    ])
    return pd.Series(values, index=frame.index, name=column, copy=False)


def _texts(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """Stripped text of at most ``MAX_TEXT_LENGTH`` characters (tags, course ids, authors)."""
    values = arrow_columns.strip(frame[column])
    if arrow_columns.longest_bytes(values) > MAX_TEXT_LENGTH:  # characters <= bytes: else none is too long
        too_long = (values.str.len() > MAX_TEXT_LENGTH).to_numpy()
        _stop_at_first(frame, column, path, [
            (too_long, lambda shown: f"value {shown} is longer than {MAX_TEXT_LENGTH} characters"),
        ])
    return values


def _tags(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    return arrow_columns.lower(_texts(frame, column, path))


class _Dropper:
    """Drops rows by reason and remembers the counts for the log and the run summary."""

    def __init__(self, name: str):
        self.name = name
        self.counts: dict[str, int] = {}
        self.marked: np.ndarray | None = None

    def mark(self, mask: pd.Series | np.ndarray, reason: str) -> None:
        """Mark rows to drop for ``reason``; a row is counted under the first reason that marks it.

        Marked rows leave in one copy of the table (:meth:`drop_marked`), not one per reason:
        each copy of 25M view rows costs seconds and a table's worth of memory.
        """
        mask = np.asarray(mask, dtype=bool)
        fresh = mask if self.marked is None else mask & ~self.marked
        count = int(fresh.sum())
        if count:
            self.counts[reason] = self.counts.get(reason, 0) + count
            self.marked = fresh if self.marked is None else self.marked | fresh

    def drop_marked(self, frame: pd.DataFrame) -> pd.DataFrame:
        marked, self.marked = self.marked, None
        return frame if marked is None else keep_rows(frame, ~marked)

    def drop(self, frame: pd.DataFrame, mask: pd.Series | np.ndarray, reason: str) -> pd.DataFrame:
        self.mark(mask, reason)
        return self.drop_marked(frame)

    def drop_duplicates(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.drop(frame, duplicated(frame), "exact duplicate row")


def _levels(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    return arrow_columns.capitalize(arrow_columns.strip(frame[column]))


def _scores(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    return _numbers(frame, column, path, SCORE_RANGE)


Parser = Callable[[pd.DataFrame, str, Path], pd.Series]

#: How each column is validated and normalised (docs/data.md), in the order checked.
_PARSERS: dict[str, dict[str, Parser]] = {
    "user_interests": {"user_handle": _handles, "interest_tag": _tags, "date_followed": _dates},
    "user_course_views": {"user_handle": _handles, "view_date": _dates, "course_id": _texts,
                          "author_handle": _texts, "level": _levels, "view_time_seconds": _numbers},
    "user_assessment_scores": {"user_handle": _handles, "assessment_tag": _tags,
                               "user_assessment_date": _dates, "user_assessment_score": _scores},
    "course_tags": {"course_id": _texts, "course_tags": _tags},
}

#: Columns whose empty value makes a row unusable (dropped and counted, not an error).
_REQUIRED_TEXT: dict[str, tuple[str, ...]] = {
    "user_interests": ("interest_tag",),
    "user_course_views": ("course_id",),
    "user_assessment_scores": ("assessment_tag",),
    "course_tags": ("course_id", "course_tags"),
}


def _mark_unusable_views(frame: pd.DataFrame, dropper: _Dropper) -> None:
    seconds = frame["view_time_seconds"]
    dropper.mark(~seconds.gt(0).to_numpy(), "non-positive view_time_seconds")
    dropper.mark(seconds.gt(MAX_VIEW_TIME_SECONDS).to_numpy(),
                 f"view_time_seconds over {MAX_VIEW_TIME_SECONDS:,.0f} (one day)")
    dropper.mark(~frame["level"].isin(LEVELS).to_numpy(), "unknown level")


def _load(path: Path, name: str, dropper: _Dropper) -> pd.DataFrame:
    """Read, validate every column (stopping at the first bad value), then drop unusable rows."""
    frame = _read_csv(path, name)
    for column, parse in _PARSERS[name].items():
        frame[column] = parse(frame, column, path)
    for column in _REQUIRED_TEXT[name]:
        dropper.mark(frame[column].eq("").to_numpy(), f"empty {column}")
    if name == "user_course_views":
        _mark_unusable_views(frame, dropper)
    return dropper.drop_duplicates(dropper.drop_marked(frame))


def load_table(data_dir: Path | str, name: str) -> tuple[pd.DataFrame, dict[str, int], int]:
    """Load one table: (clean frame, dropped counts by reason, rows read)."""
    path = Path(data_dir) / FILES[name]
    dropper = _Dropper(name)
    frame = _load(path, name, dropper)
    rows_read = len(frame) + sum(dropper.counts.values())
    frame = frame.reset_index(drop=True)
    reasons = ", ".join(f"{n:,} {r}" for r, n in dropper.counts.items()) or "none"
    log.info("%s: read %s rows, kept %s, dropped: %s", path, f"{rows_read:,}", f"{len(frame):,}", reasons)
    return frame, dropper.counts, rows_read


#: Columns every load validates but no model reads (the evaluation's time split orders by the
#: dates): a generator run drops them once the table is validated.
NOT_MODELLED: dict[str, tuple[str, ...]] = {
    "user_interests": ("date_followed",),
    "user_course_views": ("view_date", "author_handle"),
    "user_assessment_scores": ("user_assessment_date",),
}
#: Text columns a generator run keeps as categoricals: a small code per row instead of a string
#: (at 1,000,000 users the course ids alone are ~25M strings, about 1 GB as Arrow text).
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "user_interests": ("interest_tag",),
    "user_course_views": ("course_id", "level"),
    "user_assessment_scores": ("assessment_tag",),
}


def modelled(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``frame`` as the models read it: without :data:`NOT_MODELLED`, :data:`CATEGORICAL` columns as categoricals.

    Same rows and values: the categories are the distinct strings, so factorising, grouping and
    comparing give what the strings gave.
    """
    frame = frame.drop(columns=[c for c in NOT_MODELLED.get(name, ()) if c in frame.columns])
    for column in CATEGORICAL.get(name, ()):
        frame[column] = frame[column].astype("category")
    return frame


def load_tables(data_dir: Path | str, names: tuple[str, ...] | None = None, *, s3_endpoint_url: str | None = None,
                modelled_only: bool = False) -> Tables:
    """Load and validate the four tables from ``data_dir`` (all of them unless ``names`` says).

    ``data_dir`` is a folder or an ``s3://bucket/prefix`` URL.  ``modelled_only`` (the generator)
    keeps each table, once validated, as the models read it (:func:`modelled`): a fraction of the memory.

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
                if modelled_only:
                    frames[name] = modelled(frames[name], name)
            except DataValidationError as exc:
                if folder != Path(data_dir):  # name the S3 object, not the temporary copy
                    raise exc.relocated(f"{str(data_dir).rstrip('/')}/{FILES[name]}") from None
                raise
    return Tables(**frames, dropped=dropped, rows_read=rows_read)
