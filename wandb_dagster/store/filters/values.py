"""Filter values: checking what a user wrote, and the typed comparisons the Python evaluation makes.

The comparisons here are the Python side of what the SQL of :mod:`.fields` and :mod:`.jsonpath` computes;
tests/store/test_filter_engine.py holds both to the same answers on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import re2

COMPARE = ("$gt", "$gte", "$lt", "$lte")
SCALAR = (str, int, float, bool, type(None))
# Python's operator for each comparison operator (also builds the SQL comparison from columns).
ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


class _Missing:
    """A path that leads nowhere (no such key), as opposed to a JSON ``null``."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# ------------------------------------------------------------------------------------------ checks


# How long a $regex pattern may be (docs/architecture.md, "Input limits"): longer patterns are refused before
# either engine compiles them (RE2 bounds the compiled program too, PostgreSQL says "too complex").
MAX_REGEX_LENGTH = 1_000
# The largest {n,m} bound PostgreSQL accepts (RE2 accepts 1,000).
_MAX_REPEAT = 255
# The classes both engines know, and the ASCII set each is rewritten to (bracket contents). They are rewritten
# because the engines classify non-ASCII text differently: RE2's \w and [[:alpha:]] are ASCII, PostgreSQL's
# follow the database's locale (with C.UTF-8, 'é' is \w and [[:alpha:]] there and neither in RE2). Written
# out, both engines compare code points and agree. Literal control characters, not \x escapes (see _ESCAPES).
_PUNCT = "".join("\\" + c for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\x01-\x7f",  # NUL is never stored (refused at validation)
    "blank": " \\t",
    "cntrl": "\x01-\x1f\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": _PUNCT,
    "space": " \\t\\n\\v\\f\\r",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# The class escapes, rewritten the same way: \d is [0-9] in both; \D, \S and \W become negated brackets.
_CLASS_ESCAPES = {"d": _CLASSES["digit"], "s": _CLASSES["space"], "w": _CLASSES["word"]}
# Escapes that mean the same in RE2 and PostgreSQL (classes, then control characters). Others differ: \b is a
# word boundary in RE2 but a backspace in PostgreSQL, \x takes two hex digits in one and any number in the
# other, \1 and \k are backreferences PostgreSQL runs by backtracking and RE2 refuses.
_ESCAPES = frozenset("dDsSwW") | frozenset("tnrfv")
_BOUND = re.compile(r"\{([0-9]{1,4})(,([0-9]{1,4})?)?\}")
_POSIX_CLASS = re.compile(r"\[:([a-z]+):\]")
_DIALECT = (
    "the supported dialect is what RE2 and PostgreSQL read alike: literals, '.', '^', '$', '|', (...) and (?:...) "
    "groups, *, +, ?, {n}, {n,}, {n,m} (n, m <= 255; each may be followed by '?'), [...] brackets with "
    "ranges and [:alpha:]-style classes, the escapes \\d \\D \\s \\S \\w \\W \\t \\n \\r \\f \\v, a "
    "backslash before punctuation for the literal character, and a leading (?i); classes are ASCII "
    "(\\w is [0-9A-Za-z_]); no backreferences, lookarounds, named groups, possessive quantifiers or other "
    '(?...) options (docs/architecture.md, "Input limits")'
)


def _refuse(pattern: str, field: str, why: str) -> ValueError:
    return ValueError(f"$regex {pattern!r} for {field!r} is not supported: {why}; {_DIALECT}")


def _bracket(pattern: str, start: int, field: str) -> tuple[int, str]:
    """The index just past the bracket expression that opens at ``start`` (its syntax checked), and the
    expression with its classes written out (see _CLASSES)."""
    i, n = start + 1, len(pattern)
    out = ["["]
    if i < n and pattern[i] == "^":
        out.append("^")
        i += 1
    if i < n and pattern[i] == "]":  # a leading ']' is a literal in both
        out.append("\\]")
        i += 1
    previous_is_class = False
    while i < n and pattern[i] != "]":
        char = pattern[i]
        is_class = False
        if char == "[":
            found = _POSIX_CLASS.match(pattern, i)
            if found is None or found.group(1) not in _CLASSES:
                raise _refuse(
                    pattern, field, f"'[' at offset {i} inside a bracket is neither '\\[' nor a class such as [:alpha:]"
                )
            out.append(_CLASSES[found.group(1)])
            i, is_class = found.end(), True
        elif char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if not escaped.isascii() or (escaped.isalnum() and escaped not in _ESCAPES):
                raise _refuse(pattern, field, f"the escape \\{escaped} at offset {i}")
            if escaped in "DSW":
                # PostgreSQL refuses them inside a bracket, and a negated set has no bracket form.
                raise _refuse(pattern, field, f"the escape \\{escaped} at offset {i} inside a bracket (use [^...])")
            is_class = escaped in _CLASS_ESCAPES
            out.append(_CLASS_ESCAPES[escaped] if is_class else pattern[i : i + 2])
            i += 2
        elif char == "-" and i + 1 < n and pattern[i + 1] != "]" and i > start + 1:
            # A range: neither end may be a class (RE2 takes [\d-z] as a set, PostgreSQL refuses it).
            following = pattern[i + 1 : i + 3]
            if previous_is_class or following[:2] == "[:" or following[:1] == "\\" and following[1:2] in "dDsSwW":
                raise _refuse(pattern, field, f"a range at offset {i} with a class as one end")
            out.append("-")
            i += 1
        else:
            out.append(char)
            i += 1
        previous_is_class = is_class
    if i >= n:
        raise _refuse(pattern, field, f"the bracket at offset {start} is not closed")
    out.append("]")
    return i + 1, "".join(out)


def _check_dialect(pattern: str, field: str) -> str:
    """``pattern`` as both engines are given it (classes written out), after one pass over it for what RE2
    accepts but PostgreSQL refuses or reads otherwise; RE2 then refuses what it cannot run in linear time."""
    i, n = (4, len(pattern)) if pattern.startswith("(?i)") else (0, len(pattern))
    out = [pattern[:i]]
    operand = False  # whether a quantifier may follow (PostgreSQL refuses '^*', 'a**', 'a{2}{3}')
    while i < n:
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i + 1 : i + 2]
            if not escaped:
                raise _refuse(pattern, field, "it ends with a lone backslash")
            if not escaped.isascii() or (escaped.isalnum() and escaped not in _ESCAPES):
                raise _refuse(pattern, field, f"the escape \\{escaped} at offset {i}")
            if escaped.lower() in _CLASS_ESCAPES:
                negate = "^" if escaped.isupper() else ""
                out.append(f"[{negate}{_CLASS_ESCAPES[escaped.lower()]}]")
            else:
                out.append(pattern[i : i + 2])
            i, operand = i + 2, True
        elif char == "[":
            i, bracket = _bracket(pattern, i, field)
            out.append(bracket)
            operand = True
        elif char == "(":
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif pattern.startswith("(?", i):
                raise _refuse(pattern, field, f"the group {pattern[i : i + 4]!r}... at offset {i}")
            else:
                out.append("(")
                i += 1
            operand = False
        elif char in "*+?{":
            bound = _BOUND.match(pattern, i) if char == "{" else None
            if char == "{" and bound is None:
                raise _refuse(pattern, field, f"a '{{' at offset {i} that is not a bound {{n,m}} (write '\\{{')")
            if not operand:
                raise _refuse(pattern, field, f"the quantifier {char!r} at offset {i} follows nothing it can repeat")
            j = i + 1
            if bound is not None:
                counts = [int(c) for c in (bound.group(1), bound.group(3)) if c is not None]
                if max(counts) > _MAX_REPEAT:
                    raise _refuse(pattern, field, f"the bound {bound.group(0)} exceeds {_MAX_REPEAT}")
                j = bound.end()
            if j < n and pattern[j] == "?":  # lazy: the same answer for a search, in both
                j += 1
            out.append(pattern[i:j])
            i, operand = j, False
        elif char == "}":
            raise _refuse(pattern, field, f"a '}}' at offset {i} outside a bound (write '\\}}')")
        else:
            out.append(char)
            i, operand = i + 1, char not in "^$|"
    return "".join(out)


@functools.lru_cache(maxsize=512)
def compile_regex(pattern: str, ignore_case: bool = False) -> Any:
    """``pattern`` compiled by RE2 (linear-time search), as PostgreSQL's ``~`` reads it: ``.`` matches a newline.

    The SQLite ``regexp`` function and the Python evaluation both search with this, so they agree; raises
    ``re2.error`` for what RE2 refuses (:func:`check_regex` turns that into a ``ValueError``).
    """
    options = re2.Options()
    options.log_errors = False  # it would print each refused pattern to stderr
    options.dot_nl = True  # PostgreSQL's default (non-newline-sensitive) matching
    options.case_sensitive = not ignore_case
    return re2.compile(pattern, options)


def check_regex(pattern: Any, field: str) -> str:
    """``pattern`` as both engines are given it (classes written out as ASCII sets) when it is in the dialect
    both read alike, else a ``ValueError`` saying why.

    RE2 (SQLite and Python) runs in time linear in the text, so no pattern can hang a query; a pattern it
    cannot run so (a backreference, a lookaround) is refused, as is one PostgreSQL reads otherwise.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"$regex for {field!r} must be a string pattern, got {pattern!r}")
    if len(pattern) > MAX_REGEX_LENGTH:
        raise ValueError(
            f"$regex for {field!r} is {len(pattern):,} characters long; the limit is {MAX_REGEX_LENGTH:,} "
            f"(MAX_REGEX_LENGTH): {pattern[:60]!r}..."
        )
    if "\x00" in pattern:
        raise _refuse(pattern, field, "it contains a NUL character")
    written = _check_dialect(pattern, field)
    try:
        compile_regex(written)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise _refuse(pattern, field, f"RE2 refuses it ({reason})") from None
    return written


def list_value(value: Any, op: str, field: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{op} for {field!r} takes a list of values, got {value!r}")
    return list(value)


def check_exists(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"$exists for {field!r} takes True or False, got {value!r}")
    return value


def check_size(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"$size for {field!r} takes a non-negative integer, got {value!r}")
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_datetime(value: Any, field: str) -> datetime:
    """A datetime from a datetime or an ISO 8601 string ("2023-01-01T12:00:00Z"); naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise ValueError(
                f"{field!r} compares with a timestamp; {value!r} is not ISO 8601 (e.g. '2023-01-01T12:00:00Z')"
            ) from None
    if not isinstance(value, datetime):
        raise ValueError(f"{field!r} compares with a timestamp (datetime or ISO 8601 string), got {value!r}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


_INT64 = (-(2**63), 2**63 - 1)


def check_integers(name: str, value: Any) -> None:
    # SQLite binds integers as 64-bit and the driver fails with OverflowError beyond; PostgreSQL would take
    # them. Refusing them on both keeps the two backends giving the same answers.
    for item in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(item, int) and not isinstance(item, bool) and not _INT64[0] <= item <= _INT64[1]:
            try:
                hint = f"pass it as a float ({float(item)!r}) to compare approximately"
            except OverflowError:  # beyond a float too: nothing stored can equal it
                hint = "no stored number is that large"
            shown = repr(item) if len(str(item)) <= 40 else f"{str(item)[:20]}...({len(str(item))} digits)"
            raise ValueError(
                f"filter value {shown} for {name!r} is outside the 64-bit integer range the store compares; {hint}"
            )


# ------------------------------------------------------------------------------------------ records


def attribute(obj: Any, key: str) -> Any:
    """``obj[key]`` for a mapping, ``obj.key`` for a record; a clear error when it has neither."""
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
    elif hasattr(obj, key):
        return getattr(obj, key)
    raise ValueError(
        f"cannot evaluate a filter on {type(obj).__name__} {obj!r:.200}: it has no {key!r}; pass the record "
        "the field table describes (see wandb_dagster.store.filters.tables)"
    )


# ------------------------------------------------------------------------------------------ typed JSON values


def json_kind(value: Any) -> str:
    """'missing' | 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object', as the SQL sees it."""
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, (list, tuple)) else "object"


def json_equal(value: Any, want: Any) -> bool:
    """Typed equality of a present JSON value and a scalar: 5 == 5.0, 5 != "5", True != 1."""
    kind = json_kind(want)
    return json_kind(value) == kind and value == want


def element_equal(element: Any, want: Any) -> bool:
    """An array element against a scalar (``None`` matches a JSON null element)."""
    return element is None if want is None else json_equal(element, want)
