"""Template variables of a run queue, as W&B Launch documents them.

A queue's ``config`` may hold ``{{name}}`` placeholders; ``template_variables`` declares each one with a
schema ``{"schema": {"type": "string" | "number" | "integer", "default": ..., "minimum": ..., "maximum": ...,
"enum": [...]}}``. :func:`check_schemas` validates the declarations when the queue is created;
:func:`resolve_values` checks the values given at enqueue (unknown names, type, minimum, maximum, enum;
defaults fill the rest) and :func:`substitute` puts them into the config. Every refusal names the variable
and the rule it breaks, so a bad value fails at enqueue, never later in the launched run.

>>> schemas = {"gpus": {"schema": {"type": "integer", "minimum": 0, "maximum": 8, "default": 1}}}
>>> check_schemas({"run_config": {"resources": {"trainer": {"config": {"gpus": "{{gpus}}"}}}}}, schemas)
>>> resolve_values(schemas, {"gpus": 2}, queue="gpu")
{'gpus': 2}
>>> substitute({"gpus": "{{gpus}}", "name": "run-{{gpus}}"}, {"gpus": 2})
{'gpus': 2, 'name': 'run-2'}
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

TYPES = ("string", "number", "integer")
_SCHEMA_KEYS = ("type", "default", "minimum", "maximum", "enum", "description")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


class TemplateVariableError(ValueError):
    """A template variable's declaration or value breaks a rule; the message names the variable and rule."""


def placeholders(value: Any) -> set[str]:
    """The names of the ``{{var}}`` placeholders anywhere in ``value`` (strings of nested dicts/lists)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.update(_PLACEHOLDER.findall(item))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fits_type(value: Any, type_: str) -> bool:
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return _is_number(value)


def check_schemas(config: Mapping[str, Any], template_variables: Mapping[str, Any]) -> None:
    """Validate a queue's template variable declarations, and that ``config`` uses only declared ones."""
    if not isinstance(template_variables, Mapping):
        raise TemplateVariableError(
            f"template_variables must be a dict name -> {{'schema': {{...}}}}, not {type(template_variables).__name__}"
        )
    for name, declaration in template_variables.items():
        if not isinstance(name, str) or not _PLACEHOLDER.fullmatch("{{" + name + "}}"):
            raise TemplateVariableError(
                f"template variable name {name!r} is invalid: use letters, digits, '_', '-' and '.'"
            )
        if not isinstance(declaration, Mapping) or set(declaration) != {"schema"} or not isinstance(
            declaration["schema"], Mapping
        ):
            raise TemplateVariableError(
                f"template variable {name!r} must be declared as {{'schema': {{'type': ...}}}}, got {declaration!r}"
            )
        schema = declaration["schema"]
        unknown = sorted(set(schema) - set(_SCHEMA_KEYS))
        if unknown:
            raise TemplateVariableError(
                f"template variable {name!r}: unknown schema keys {unknown}; the rules are {list(_SCHEMA_KEYS)}"
            )
        type_ = schema.get("type")
        if type_ not in TYPES:
            raise TemplateVariableError(
                f"template variable {name!r}: type {type_!r} is not one of {list(TYPES)}"
            )
        for bound in ("minimum", "maximum"):
            if bound in schema:
                if type_ == "string":
                    raise TemplateVariableError(
                        f"template variable {name!r}: {bound} applies to numbers and integers, not strings"
                    )
                if not _is_number(schema[bound]):
                    raise TemplateVariableError(
                        f"template variable {name!r}: {bound} must be a number, not {schema[bound]!r}"
                    )
        if "minimum" in schema and "maximum" in schema and schema["minimum"] > schema["maximum"]:
            raise TemplateVariableError(
                f"template variable {name!r}: minimum {schema['minimum']} is above maximum {schema['maximum']}"
            )
        if "enum" in schema:
            enum = schema["enum"]
            if not isinstance(enum, list) or not enum:
                raise TemplateVariableError(f"template variable {name!r}: enum must be a non-empty list")
            for option in enum:
                if not _fits_type(option, type_):
                    raise TemplateVariableError(
                        f"template variable {name!r}: enum option {option!r} is not of type {type_!r}"
                    )
        if "default" in schema:
            try:
                _check_value(name, schema, schema["default"], what="default")
            except TemplateVariableError as exc:
                raise TemplateVariableError(f"{exc} (in its own schema)") from None
    undeclared = sorted(placeholders(config) - set(template_variables))
    if undeclared:
        raise TemplateVariableError(
            f"the queue config uses template variables {undeclared} that template_variables does not declare; "
            f"declare each with a schema (declared: {sorted(template_variables)})"
        )


def _check_value(name: str, schema: Mapping[str, Any], value: Any, *, what: str = "value") -> None:
    type_ = schema["type"]
    if not _fits_type(value, type_):
        raise TemplateVariableError(
            f"template variable {name!r}: {what} {value!r} breaks its rule type {type_!r} "
            f"(got {type(value).__name__})"
        )
    if "minimum" in schema and value < schema["minimum"]:
        raise TemplateVariableError(
            f"template variable {name!r}: {what} {value!r} breaks its rule minimum {schema['minimum']}"
        )
    if "maximum" in schema and value > schema["maximum"]:
        raise TemplateVariableError(
            f"template variable {name!r}: {what} {value!r} breaks its rule maximum {schema['maximum']}"
        )
    if "enum" in schema and value not in schema["enum"]:
        raise TemplateVariableError(
            f"template variable {name!r}: {what} {value!r} breaks its rule enum {schema['enum']}"
        )


def resolve_values(
    template_variables: Mapping[str, Any], values: Mapping[str, Any] | None, *, queue: str
) -> dict[str, Any]:
    """The value of every declared variable: the one given (checked against its schema) or its default."""
    values = dict(values or {})
    unknown = sorted(set(values) - set(template_variables))
    if unknown:
        raise TemplateVariableError(
            f"queue {queue!r} has no template variables {unknown}; its variables are {sorted(template_variables)}"
        )
    resolved: dict[str, Any] = {}
    for name, declaration in template_variables.items():
        schema = declaration["schema"]
        if name in values:
            _check_value(name, schema, values[name])
            resolved[name] = values[name]
        elif "default" in schema:
            resolved[name] = schema["default"]
        else:
            raise TemplateVariableError(
                f"template variable {name!r} of queue {queue!r} has no default: pass a value, e.g. "
                f"template_variables={{{name!r}: ...}}"
            )
    return resolved


def substitute(value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` with every placeholder replaced: a string that is one placeholder becomes the value itself
    (an integer stays an integer), a placeholder inside a longer string its text."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), value)
    if isinstance(value, Mapping):
        return {key: substitute(item, values) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [substitute(item, values) for item in value]
    return value
