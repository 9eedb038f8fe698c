"""How a message that several front ends show names an input a user can give.

Validation and face analysis run under the Python API, the CLI, the HTTP API and the page
alike, so a message they make may name neither a CLI flag (`--style IMAGE` means nothing to
an HTTP client) nor a widget. It names the input by its request field instead, through
`field`: the name in `GenerationRequest`, the HTTP API's form and the pipeline's keyword
arguments, in backticks. A front end whose names differ rewrites the references with `speak`
and its own table (the CLI: `--style IMAGE`; the page: its labels).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"`([a-z][a-z0-9_]*)`")


def field_ref(name: str) -> str:
    """A reference to the request field `name`, as shared messages write it."""
    return f"`{name}`"


def speak(message: str, names: Mapping[str, str]) -> str:
    """`message` with each field reference in `names` written as that front end calls it."""
    return _REFERENCE.sub(lambda match: names.get(match.group(1), match.group(0)), message)
