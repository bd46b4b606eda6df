"""Read a table's cells as Arrow strings with pyarrow's multi-threaded CSV parser.

pandas' C parser builds one Python string object per cell: at 1,000,000 users (~30M interest
rows, ~25M view rows) that is minutes of parsing and several GB of objects.  pyarrow's parser
writes the cells into contiguous Arrow buffers on every core, and pandas keeps them there
(Arrow-backed ``str`` columns), so the text columns are never Python objects at all.

This is the fast path only.  It must accept exactly what ``pd.read_csv(dtype=str,
keep_default_na=False)`` accepts and give the same cells, so it gives up (returns ``None``)
whenever the two parsers could disagree or the file has a problem to report: a row with more or
fewer fields than the header, bytes that are not UTF-8, a header Arrow reads differently from
pandas.  The loader then reads the file with pandas as before, which either accepts it or
raises the error naming the editor's line; messages come from one place only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

#: Bytes per parsing block (Arrow's default: 1 MB).  Each block becomes one Arrow chunk, and the
#: column checks loop over chunks in Python: larger blocks mean far fewer chunks on large tables.
_BLOCK = 16 << 20
#: Characters that make a line blank for pandas (it skips such lines; Arrow sees one short row).
_BLANK = " \t\r"


def _skip_blank(row: pa_csv.InvalidRow) -> str:
    """Arrow's handler for a row with the wrong number of fields: skip it only if it is blank."""
    return "skip" if not row.text.strip(_BLANK) else "error"


def read_strings(path: Path, header: list[str], columns: tuple[str, ...]) -> pd.DataFrame | None:
    """``columns`` of ``path`` as Arrow-backed ``str`` columns, or ``None`` to read it with pandas.

    ``header`` is the header as pandas read it (names stripped).  The header row is parsed as data
    (generated column names), so its cells are compared with pandas' own reading of them, and any
    difference (duplicate or unnamed columns, which pandas renames) sends the file to pandas.
    """
    fields = len(header)
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True, block_size=_BLOCK),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=_skip_blank),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{i}": pa.large_string() for i in range(fields)},  # pandas' own layout: no copy
                strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # OS errors propagate: they are reported as such
        return None
    if table.num_columns != fields or table.num_rows == 0:
        return None
    names = [str(table.column(i)[0].as_py()).strip() for i in range(fields)]
    if names != header or len(set(names)) != fields:
        return None
    picked = {name: table.column(names.index(name)).slice(1) for name in columns}
    del table
    return pa.table(picked).to_pandas(self_destruct=True, split_blocks=True)
