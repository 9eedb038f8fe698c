"""What the server says to a client: one line, of bounded length, whatever the input was.

Error messages quote what the client sent ("seed must be a whole number, got '...'"), and a
client can send 60,000 digits. Every message that leaves the server (HTTP `detail`, the page's
status line, a job's `error`) passes through `one_line`, so a long quote is shortened in the
middle and the message keeps both its problem and its fix.
"""

from __future__ import annotations

import re

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
        half = MAX_MESSAGE_CHARS // 2 - 10
        flat = f"{flat[:half]} …[{len(flat) - 2 * half} characters]… {flat[-half:]}"
    return flat


def quote(value: object, limit: int = MAX_QUOTE_CHARS) -> str:
    """`value` as text, shortened to its ends (with its length said) when over `limit`."""
    text = str(value)
    if len(text) <= limit:
        return text
    keep = max(8, limit // 2 - 12)
    return f"{text[:keep]}…[{len(text)} characters]…{text[-8:]}"
