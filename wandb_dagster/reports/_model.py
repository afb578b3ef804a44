"""What every report object shares: dataclass fields checked when it is built, unknown arguments refused with
the closest valid name, and a JSON form (the report's ``spec``) that loads back into equal objects.

The JSON form of an object is its fields plus ``"@type"``, the class name; plain dicts (a Mongo filter) pass
through unchanged, since no filter key starts with ``@``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:  # only a marker for type checkers (typing has it from Python 3.11)

    def dataclass_transform(**_kwargs: Any) -> Any:
        return lambda decorated: decorated


T = TypeVar("T")
TYPE_KEY = "@type"
_CLASSES: dict[str, type] = {}


@dataclass_transform(field_specifiers=(dataclasses.field,))
def model(cls: type[T]) -> type[T]:
    """Make ``cls`` a dataclass whose constructor names a misspelt argument and the valid ones."""
    made = dataclasses.dataclass(cls)
    names = [f.name for f in dataclasses.fields(made) if f.init]  # type: ignore[arg-type]
    init = made.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        unknown = [k for k in kwargs if k not in names]
        if unknown:
            hints = [
                f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, names, 1)) else repr(k)
                for k in unknown
            ]
            raise TypeError(f"{made.__name__}() has no argument {', '.join(hints)}; its arguments are {names}")
        if len(args) > len(names):
            raise TypeError(f"{made.__name__}() takes at most {len(names)} positional arguments ({names})")
        init(self, *args, **kwargs)

    made.__init__ = __init__  # type: ignore[method-assign]
    _CLASSES[made.__name__] = made
    return made


def to_spec(value: Any) -> Any:
    """The JSON form of a report object (or of a list, dict or plain value holding them)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {TYPE_KEY: type(value).__name__}
        for f in dataclasses.fields(value):
            if f.init:
                out[f.name] = to_spec(getattr(value, f.name))
        return out
    if isinstance(value, (list, tuple)):
        return [to_spec(v) for v in value]
    if isinstance(value, dict):
        return {k: to_spec(v) for k, v in value.items()}
    return value


def from_spec(value: Any) -> Any:
    """The objects of a JSON form written by :func:`to_spec`; an unknown ``@type`` is a ValueError."""
    if isinstance(value, list):
        return [from_spec(v) for v in value]
    if isinstance(value, dict):
        if TYPE_KEY not in value:
            return {k: from_spec(v) for k, v in value.items()}
        name = value[TYPE_KEY]
        cls = _CLASSES.get(name)
        if cls is None:
            raise ValueError(
                f"the saved report names an unknown block or panel {name!r}; it was saved by a newer "
                "wandb_dagster: upgrade to read it"
            )
        return cls(**{k: from_spec(v) for k, v in value.items() if k != TYPE_KEY})
    return value


def choice(owner: str, name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{owner}({name}={value!r}) is invalid; use one of {list(allowed)}")


def optional_bool(owner: str, name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{owner}({name}={value!r}) is invalid; use True, False or None")


def text(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{owner}({name}={value!r}) is invalid; {name} must be a string")


def number_range(owner: str, name: str, value: Any) -> tuple[float | None, float | None]:
    """``(lo, hi)`` with None for an open end, from a tuple or list of two numbers or None."""
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value)
    )
    if not ok:
        raise ValueError(f"{owner}({name}={value!r}) is invalid; give (low, high), numbers or None, e.g. (0, 1)")
    lo, hi = value
    if lo is not None and hi is not None and lo >= hi:
        raise ValueError(f"{owner}({name}={value!r}) is invalid; the low end must be below the high end")
    return (lo, hi)
