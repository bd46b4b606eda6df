"""Read a table with pyarrow's multi-threaded CSV reader: the loader's one CSV parser.

pandas' C parser builds one Python string object per cell: at 1,000,000 users (~30M interest
rows, ~25M view rows) that is minutes of parsing and several GB of objects.  pyarrow's reader
writes the cells into contiguous Arrow buffers on every core, and pandas keeps them there
(Arrow-backed ``str`` columns), so the text columns are never Python objects at all; the loader
then types them with pyarrow.compute.

The dialect: UTF-8 (a BOM is skipped), ``,`` between fields, ``"`` quotes a field (a doubled
quote inside is one quote; a quoted field may span lines), records end with ``\\n``, ``\\r\\n``
or ``\\r``, blank lines (spaces, tabs and ``\\r`` only) are skipped.  The first record is the
header.  A row with fewer fields than the header has the missing ones empty; a row with more
is refused.

pyarrow numbers rows by record, not by line, and not at all for a row it cannot use, so where a
row must be named (an error) or placed (a short row, read again with its missing fields added)
:mod:`recommender.data.csv_lines` finds it by scanning the file's bytes, only then.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from recommender.data.csv_lines import OddRecord, odd_records, undecodable_line

#: Bytes per parsing block (Arrow's default: 1 MB).  Each block becomes one Arrow chunk, and the
#: column checks loop over chunks in Python: larger blocks mean far fewer chunks on large tables.
_BLOCK = 16 << 20
#: Characters that make a line blank (skipped; Arrow sees a row of one field).
_BLANK = " \t\r"
_BOM = b"\xef\xbb\xbf"
#: Bytes read to find the header: the blank lines before it, and a bound on its fields.
_HEAD = 1 << 16


class CsvError(ValueError):
    """The file cannot be read as a table; ``row`` is the editor's line where there is one."""

    def __init__(self, message: str, row: int | None = None, column: str | None = None):
        super().__init__(message)
        self.message, self.row, self.column = message, row, column


def _head(path: Path) -> tuple[int, int]:
    """(blank lines before the header, a bound on the header's fields); ``CsvError`` if the
    file holds nothing but blank lines.  Opened by Python, so an OS error is Python's own."""
    lines = 0
    with open(path, "rb") as handle:
        chunk = handle.read(_HEAD).removeprefix(_BOM)
        while chunk:
            while chunk.endswith(b"\r") and (more := handle.read(1)):  # \r\n is one line break
                chunk += more
            text = chunk.lstrip(b" \t\r\n")
            blank = chunk[:len(chunk) - len(text)]
            complete = blank[:max(blank.rfind(b"\n"), blank.rfind(b"\r")) + 1]  # the header's own indent stays
            lines += complete.replace(b"\r\n", b"\n").count(b"\n") + complete.replace(b"\r\n", b"").count(b"\r")
            if text:
                return lines, (text + handle.read(_HEAD)).count(b",") + 1
            chunk = handle.read(_HEAD)
    raise CsvError("file is empty (no header row)")


def read_columns(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """``columns`` of ``path`` as Arrow-backed ``str`` columns (header names stripped; the first
    of two columns of one name); ``CsvError`` naming the line of a problem."""
    skip, fields_bound = _head(path)
    options = _options(fields_bound)
    odd_rows: list[int] = []  # fields of each row skipped for a wrong count (not blank)

    def on_invalid(row: pa_csv.InvalidRow) -> str:
        if row.text.strip(_BLANK):
            odd_rows.append(row.actual_columns)
        return "skip"

    try:
        with _quiet_undecodable(on_invalid):
            table = pa_csv.read_csv(
                path,
                read_options=pa_csv.ReadOptions(autogenerate_column_names=True, block_size=_BLOCK, skip_rows=skip),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
                convert_options=options,
            )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # OS errors propagate: they are reported as such
        raise _unreadable(path, exc) from None
    names = [str(table.column(i)[0].as_py()).strip() for i in range(table.num_columns)]
    missing = [c for c in columns if c not in names]
    if missing:
        raise CsvError("required column missing", column=missing[0])
    if odd_rows:
        table = _with_short_rows(path, table, len(odd_rows), options)
    picked = {name: table.column(names.index(name)).slice(1) for name in columns}
    del table
    return pa.table(picked).to_pandas(self_destruct=True, split_blocks=True)


@contextmanager
def _quiet_undecodable(handler: Callable) -> Iterator[None]:
    """Silence pyarrow's report that it could not decode a skipped row's text for ``handler``:
    the read then fails, and the error names the undecodable bytes and their line."""
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        if not (unraisable.object is handler and isinstance(unraisable.exc_value, UnicodeDecodeError)):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _options(fields: int) -> pa_csv.ConvertOptions:
    """Every cell as text (``large_string``: pandas' own layout, no copy), none taken for missing."""
    return pa_csv.ConvertOptions(column_types={f"f{i}": pa.large_string() for i in range(fields)},
                                 strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[])


def _unreadable(path: Path, exc: Exception) -> CsvError:
    """The error for a file pyarrow refused: undecodable bytes, else the first row it could not use."""
    where = undecodable_line(path)
    if where:
        line, raw = where
        return CsvError(f"not UTF-8 text (bytes {raw.hex(' ')}); save the file as UTF-8", row=line)
    try:
        _short_rows(path)
    except CsvError as error:
        return error
    return CsvError(f"not a readable CSV file: {str(exc).strip().splitlines()[0]}")


def _short_rows(path: Path) -> tuple[int, list[OddRecord]]:
    """(the header's fields, the rows with fewer); ``CsvError`` naming the first row with more,
    or a quote that is never closed."""
    fields, odd = odd_records(path)
    last = odd[-1] if odd else None
    if last is not None and last.unclosed:
        raise CsvError("not a readable CSV file: a quoted field that starts here is never closed", row=last.line)
    if last is not None and last.fields > fields:
        raise CsvError(f"not a readable CSV file: expected {fields} fields, saw {last.fields}", row=last.line)
    return fields, odd


def _with_short_rows(path: Path, table: pa.Table, count: int, options: pa_csv.ConvertOptions) -> pa.Table:
    """``table`` with the ``count`` rows the reader skipped for a wrong number of fields put back
    in their places, their missing fields empty; ``CsvError`` for a row with too many."""
    fields, odd = _short_rows(path)
    if len(odd) != count or fields != table.num_columns:  # the scan and the reader disagree: name no wrong line
        raise CsvError(f"not a readable CSV file: {count} rows with fewer than {fields} fields could not be placed")
    with open(path, "rb") as handle:
        texts = []
        for record in odd:
            handle.seek(record.start)
            texts.append(handle.read(record.end - record.start) + b"," * (fields - record.fields))
    short = pa_csv.read_csv(
        io.BytesIO(b"\n".join(texts) + b"\n"),
        read_options=pa_csv.ReadOptions(column_names=table.column_names),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=options,
    )
    placed = np.zeros(table.num_rows + short.num_rows, dtype=bool)
    placed[[record.record for record in odd]] = True
    order = np.empty(len(placed), dtype=np.int64)
    order[~placed] = np.arange(table.num_rows)
    order[placed] = table.num_rows + np.arange(short.num_rows)
    return pa.concat_tables([table, short]).take(order)
