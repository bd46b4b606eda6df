"""Where a CSV record is in its file, as the line number a person sees in an editor.

Parsers count records, not lines: a quoted field may span several lines and blank lines are
skipped, so "data row 17" and "line 19 of the file" differ as soon as the export has either.
An operator fixes the file in an editor, so every error names the editor's line (header = line
1; for a record spanning lines, the line where it starts).

These scans run only when an error is reported, never on the loading path: a good file is read
once, by the parser.  The csv module reads the records and counts the lines (``reader.line_num``);
it streams, so memory stays constant whatever the file's size.

Assumed dialect (the one the loader parses with): UTF-8 or any ASCII-compatible encoding,
``"`` quotes fields, a quote inside a quoted field is doubled (RFC 4180), records end with
``\\n`` or ``\\r\\n``, and a line holding only spaces, tabs or ``\\r`` is blank (pandas skips it).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path


def _is_blank(row: list[str]) -> bool:
    """An empty line, or one of spaces, tabs and ``\\r`` only: pandas skips both."""
    return not row or (len(row) == 1 and not row[0].strip(" \t\r"))


def record_line(path: Path | str, record: int, *, skip_blank: bool = True) -> int | None:
    """Editor line (1-based) where CSV record ``record`` starts; ``None`` if the file has fewer.

    ``record`` counts from 0 (the header).  With ``skip_blank`` (the loader's data rows) blank
    lines are not records; without it they are (the numbering of pandas' tokenizer errors).
    Also ``None`` when the csv module cannot read the file that far (a field over its size limit).
    """
    # Undecodable bytes pass through (surrogateescape): they are another error's business.
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        seen = 0
        lines_before = 0  # lines consumed before the current record: it starts on the next one
        try:
            for row in reader:
                if not (skip_blank and _is_blank(row)):
                    if seen == record:
                        return lines_before + 1
                    seen += 1
                lines_before = reader.line_num
        except csv.Error:
            return None
    return None


def data_row_line(path: Path | str, position: int) -> int:
    """Editor line of data row ``position`` (0-based, as the parser numbered the rows)."""
    line = record_line(path, position + 1)
    return line if line is not None else position + 2  # beyond the scan's dialect: the record count


_TOKENIZER_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def tokenizer_error(path: Path | str, message: str) -> tuple[int | None, str]:
    """(editor line, short reason) for a pandas tokenizer error such as a row with extra fields.

    pandas numbers lines counting blank lines but not the newlines inside quoted fields, so its
    "line 6" may be line 7 of the file.
    """
    found = _TOKENIZER_LINE.search(message)
    if not found:
        return None, message.strip().splitlines()[0] if message.strip() else "unreadable CSV"
    expected, parser_line, saw = (int(g) for g in found.groups())
    line = record_line(path, parser_line - 1, skip_blank=False)
    return line or parser_line, f"expected {expected} fields, saw {saw}"


def undecodable_line(path: Path | str, encoding: str = "utf-8") -> tuple[int, bytes] | None:
    """(editor line, offending bytes) of the first byte sequence that is not ``encoding``.

    Line by line: in UTF-8 and every ASCII-compatible encoding no character's bytes hold ``\\n``,
    so a line decodes on its own.
    """
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                return number, line[exc.start:exc.end]
    return None
