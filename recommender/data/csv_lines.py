"""Where a CSV record is in its file, as the line number a person sees in an editor.

Parsers count records, not lines: a quoted field may span several lines and blank lines are
skipped, so "data row 17" and "line 19 of the file" differ as soon as the export has either.
An operator fixes the file in an editor, so every error names the editor's line (header = line
1; for a record spanning lines, the line where it starts).

These scans run only when an error is reported, never on the loading path: a good file is read
once, by the parser.  They read the file in fixed-size blocks with numpy (no Python loop over
rows), in constant memory.

Assumed dialect (the one the loader parses with): UTF-8 or any ASCII-compatible encoding,
``"`` quotes fields, a quote inside a quoted field is doubled (RFC 4180), records end with
``\\n`` or ``\\r\\n``, and a line holding only spaces, tabs or ``\\r`` is blank (pandas skips it).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_BLOCK = 1 << 22  # 4 MB per step: a few tens of MB of temporaries at most
_QUOTE, _NEWLINE = ord('"'), ord("\n")
_CONTENT = np.ones(256, dtype=np.uint8)  # 1 for a byte that makes a line non-blank
_CONTENT[[ord(" "), ord("\t"), ord("\r"), _NEWLINE]] = 0


def record_line(path: Path | str, record: int, *, skip_blank: bool = True) -> int | None:
    """Editor line (1-based) where CSV record ``record`` starts; ``None`` if the file has fewer.

    ``record`` counts from 0 (the header).  With ``skip_blank`` (the loader's data rows) blank
    lines are not records; without it they are (the numbering of pandas' tokenizer errors).
    """
    in_quotes = 0  # quote parity carried from block to block
    lines_before = 0  # newlines before the current block
    record_start_line = 1  # line where the record being read started
    has_content = False  # whether that record holds a non-blank byte so far
    seen = 0  # records counted before the current block
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            data = np.frombuffer(block, dtype=np.uint8)
            newlines = np.flatnonzero(data == _NEWLINE)
            quotes_before = np.searchsorted(np.flatnonzero(data == _QUOTE), newlines)
            closing = np.flatnonzero((quotes_before + in_quotes) % 2 == 0)  # indexes into newlines
            ends = newlines[closing]  # record boundaries: newlines outside quotes
            starts = np.concatenate(([0], ends + 1))
            starts = starts[starts < len(data)]
            content = np.maximum.reduceat(_CONTENT[data], starts).astype(bool)
            if len(ends):
                filled = content[: len(ends)].copy()
                filled[0] |= has_content
                counted = filled if skip_blank else np.ones(len(ends), dtype=bool)
                ordinal = seen + np.cumsum(counted) - 1
                hit = np.flatnonzero(counted & (ordinal == record))
                if len(hit):
                    i = int(hit[0])
                    return record_start_line if i == 0 else lines_before + int(closing[i - 1]) + 2
                seen += int(counted.sum())
                record_start_line = lines_before + int(closing[-1]) + 2
                has_content = len(content) > len(ends) and bool(content[-1])
            else:
                has_content = has_content or bool(content[0])
            in_quotes = int((np.count_nonzero(data == _QUOTE) + in_quotes) % 2)
            lines_before += len(newlines)
    last_counted = has_content or not skip_blank
    return record_start_line if last_counted and seen == record else None


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
    """(editor line, offending bytes) of the first byte sequence that is not ``encoding``."""
    lines_before = 0
    carry = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(_BLOCK)
            data = carry + block
            if not data:
                return None
            try:
                data.decode(encoding)
                carry = b""
            except UnicodeDecodeError as exc:
                at_end = exc.end >= len(data) and exc.reason == "unexpected end of data"
                if not (at_end and block):  # a sequence cut by the block boundary is not an error
                    return lines_before + data.count(b"\n", 0, exc.start) + 1, data[exc.start:exc.end]
                carry = data[exc.start:]
                data = data[: exc.start]
            lines_before += data.count(b"\n")
            if not block:
                return None
