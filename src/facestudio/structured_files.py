"""The one reader of JSON, TOML and YAML that users give us: bounded before it is parsed.

Configs, benchmark definitions, model configs, a prepared `index.json` and the settings inside
a PNG all come through `read_structured_file` or `parse_structured`. Python's parsers recurse
once per level of nesting (100,000 levels is a `RecursionError`), refuse whole numbers over
4,300 digits with a `ValueError` that names `sys.set_int_max_str_digits`, take quadratic time
on YAML's base-60 numbers, and expand YAML aliases without limit; tomllib takes quadratic
memory on a 100,000-part dotted key. So the text is checked first, and the parsed value once
more (aliases and dotted keys nest without brackets):

- at most `max_bytes` bytes, refused from the file's size before a byte is read;
- at most `MAX_DEPTH` levels of nesting;
- no number longer than `MAX_NUMBER_DIGITS` digits (no setting needs one);
- at most one value per character of text once YAML aliases are expanded, and no alias
  that contains itself.

Every refusal is one line naming the file and the problem. `quote` and `shown` are how an
error message shows what a user gave: a bounded, printable piece of it.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import stat
import tomllib
from pathlib import Path
from typing import Any

from facestudio.errors import FaceStudioError
from facestudio.files import kind_of

MAX_BYTES = 4 * 1024 * 1024
"""Default bound of one settings file: a config or benchmark is a few kB."""
MAX_DEPTH = 64
"""Levels of nesting: the deepest of our settings has 4; JSON's parser needs ~1,000 frames."""
MAX_NUMBER_DIGITS = 100
"""Digits of a number: a seed is 19, a float 17; 100 leaves room and stays far under 4,300."""
MAX_INT = 10**MAX_NUMBER_DIGITS
KINDS = {".json": "JSON", ".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?')
_TOML_SKIPPED = re.compile(
    r'"""[\s\S]*?(?:"""|$)|\'\'\'[\s\S]*?(?:\'\'\'|$)'  # multi-line strings
    r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|\'[^\'\n]*\'?'  # one-line strings
    r"|#[^\n]*"  # comments
)
_BRACKETS = re.compile(r"[\[\]{}]")
_LONG_DIGITS = re.compile(rf"(?<![0-9_])[0-9](?:_?[0-9]){{{MAX_NUMBER_DIGITS},}}")
_DOTTED_KEY = re.compile(rf"(?<![\w-])(?:[\w-]++[ \t]*+\.[ \t]*+){{{MAX_DEPTH},}}")


class _Refused(Exception):
    """Why a text is refused; the caller adds which file it is."""


def read_structured_file(
    path: str | os.PathLike,
    what: str = "file",
    kind: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> Any:
    """The plain data in a JSON/TOML/YAML file (its kind from the suffix unless given), within
    the bounds above; one-line `FaceStudioError` naming `what` and the file otherwise."""
    source = f"{what} {quote(os.fspath(path))}"
    kind = kind or KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise FaceStudioError(f"{source} must be .toml, .yaml, .yml or .json")
    data = _read_bounded(path, source, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FaceStudioError(
            f"{source} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    return parse_structured(text, kind, source, max_bytes)


def parse_structured(text: str, kind: str, source: str, max_bytes: int = MAX_BYTES) -> Any:
    """`text` parsed as `kind` ("JSON", "TOML" or "YAML") within the bounds; `source` says in
    errors what the text is ("the settings in 'x.png'")."""
    if len(text) > max_bytes:
        raise FaceStudioError(
            f"{source} holds {len(text):,} characters, over the {max_bytes:,} limit"
        )
    try:
        if kind == "JSON":
            value = _json(text)
        elif kind == "TOML":
            value = _toml(text)
        else:
            value = _yaml(text)
        _check_value(value, len(text) + 1000)
    except _Refused as exc:
        raise FaceStudioError(f"{source} {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise FaceStudioError(
            f"{source} is not valid {kind}: {printable(_one_line(exc), 160)}"
        ) from None
    return value


def quote(text: object, limit: int = 120) -> str:
    """`text` in single quotes for an error message: printable, and at most `limit` characters
    (its start and end kept, the middle elided with "…")."""
    return f"'{printable(str(text), limit)}'"


def printable(text: str, limit: int = 120) -> str:
    """`text` with control characters and undecodable bytes escaped, shortened to `limit`."""
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]}…{text[-(limit - half - 1) :]}"
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class _ShortRepr(reprlib.Repr):
    def repr_int(self, value: int, level: int) -> str:
        if value.bit_length() > 64 * 8:  # str() of a huge int is slow, over 4,300 digits refused
            return f"<a {value.bit_length()}-bit whole number>"
        return super().repr_int(value, level)


_SHORT = _ShortRepr()
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 60
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 3, 6, 4


def shown(value: object) -> str:
    """A value as an error message shows it: its repr, bounded in length and depth."""
    return printable(_SHORT.repr(value), 120)


def _read_bounded(path: str | os.PathLike, source: str, max_bytes: int) -> bytes:
    """The bytes of a regular file within `max_bytes`. A FIFO, device or folder is refused from
    its kind before it is opened (reading a FIFO or /dev/zero never ends), and again on the
    open file, opened non-blocking in case one was swapped in."""
    try:
        _check_regular(os.stat(path), source, max_bytes)
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise FaceStudioError(f"{source} does not exist") from None
    except OSError as exc:
        raise FaceStudioError(f"cannot read {source}: {exc.strerror or exc}") from None
    with os.fdopen(handle, "rb") as file:
        _check_regular(os.fstat(handle), source, max_bytes)
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew since
        raise FaceStudioError(f"{source} is over the {max_bytes:,}-byte limit for this file")
    return data


def _check_regular(state: os.stat_result, source: str, max_bytes: int) -> None:
    if not stat.S_ISREG(state.st_mode):
        raise FaceStudioError(f"{source} is not a file: it is {kind_of(state.st_mode)}")
    if state.st_size > max_bytes:
        raise FaceStudioError(
            f"{source} is {state.st_size:,} bytes, over the {max_bytes:,}-byte limit for this file"
        )


def _json(text: str) -> Any:
    _check_text(_JSON_STRING.sub('""', text))
    return json.loads(text)


def _toml(text: str) -> Any:
    # Strings become a bare word, so that a dotted key of quoted parts is still seen as one.
    code = _TOML_SKIPPED.sub(lambda m: "s" if m.group().startswith(("'", '"')) else "", text)
    _check_text(code)
    if _DOTTED_KEY.search(code):
        raise _Refused(f"has a dotted key nested more than {MAX_DEPTH} levels deep")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        raise
    except ValueError:  # int() of a number over Python's digit limit, outside the checks above
        raise _Refused(f"has a number longer than {MAX_NUMBER_DIGITS} digits") from None


def _check_text(code: str) -> None:
    """Nesting and number length in JSON or TOML with its strings and comments blanked."""
    if _LONG_DIGITS.search(code):
        raise _Refused(f"has a number longer than {MAX_NUMBER_DIGITS} digits")
    depth = 0
    for match in _BRACKETS.finditer(code):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise _Refused(f"is nested more than {MAX_DEPTH} levels deep")


def _yaml(text: str) -> Any:
    import yaml  # declared in pyproject; imported here so JSON and TOML readers do not pay

    try:
        _check_yaml_events(yaml, text)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:  # refused tags (!!python/...) included: nothing is constructed
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"{getattr(exc, 'problem', None) or exc}{where}") from None


def _check_yaml_events(yaml, text: str) -> None:
    """Nesting and numbers from YAML's event stream (made without recursion), before any
    node is composed or constructed."""
    resolver = yaml.resolver.Resolver()
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(f"is nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif (
            isinstance(event, yaml.ScalarEvent)
            and event.implicit[0]
            and len(event.value) > MAX_NUMBER_DIGITS
            and resolver.resolve(yaml.ScalarNode, event.value, (True, False)).endswith(":int")
        ):
            raise _Refused(f"has a number longer than {MAX_NUMBER_DIGITS} digits")


def _check_value(value: Any, budget: int) -> None:
    """The parsed value walked without recursion: nesting, whole numbers, and the count of
    values (YAML aliases can make a few lines expand to billions)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise _Refused("expands to more values than it has characters (YAML aliases?)")
        if isinstance(item, dict | list | tuple | set | frozenset):
            if depth >= MAX_DEPTH:
                raise _Refused(f"is nested more than {MAX_DEPTH} levels deep")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, int) and not -MAX_INT < item < MAX_INT:
            raise _Refused(f"has a number longer than {MAX_NUMBER_DIGITS} digits")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
