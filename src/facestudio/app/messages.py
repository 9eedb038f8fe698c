"""What the server says to a client: one line, of bounded length, whatever the input was.

Error messages quote what the client sent ("seed must be a whole number, got '...'"), and a
client can send 60,000 digits. Every message that leaves the server (HTTP `detail`, the page's
status line, a job's `error`) passes through `one_line`, so a long quote is shortened in the
middle (as `facestudio.structured_files` quotes everywhere) and the message keeps both its
problem and its fix, wherever the message was made.
"""

from __future__ import annotations

import re

from facestudio.structured_files import printable

MAX_QUOTE_CHARS = 80
"""Longest run without spaces kept whole; a longer one is shortened to its ends."""

MAX_MESSAGE_CHARS = 600
"""Longest message: several short quotes and the fix fit well within it."""

_LONG_RUN = re.compile(rf"\S{{{MAX_QUOTE_CHARS + 1},}}")


def one_line(text: str) -> str:
    """`text` on one line with every over-long quote elided and the whole bounded."""
    flat = " ".join(str(text).split())
    flat = _LONG_RUN.sub(lambda match: quote(match.group(0)), flat)
    if len(flat) > MAX_MESSAGE_CHARS:
        flat = printable(flat, MAX_MESSAGE_CHARS)
    return flat


def quote(value: object, limit: int = MAX_QUOTE_CHARS) -> str:
    """`value` as text for a message: printable, its ends kept around "…" when over `limit`
    (the project's quoting, `facestudio.structured_files.printable`)."""
    return printable(str(value), limit)
