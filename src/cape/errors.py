"""Exceptions whose message is meant for the user, and helpers that word such messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class CapeError(Exception):
    """An error the CLI prints as ``cape: error: MESSAGE`` without a traceback.

    Raise it (or a subclass) for bad input a user can fix: a missing store, a
    config value out of range, too few labelled samples. The message must name
    the file or setting and the problem.
    """


def did_you_mean(word: object, candidates: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate (difflib), or ``""`` if none is close."""
    import difflib

    names = [str(c) for c in candidates]
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validation_messages(error: Exception, model: type, prefix: str = "") -> list[str]:
    """One line per problem of a pydantic ``ValidationError`` raised by ``model``.

    ``unknown key 'epocs' (did you mean 'epochs'?)`` for a misspelt key, else
    ``path: what is wrong, got VALUE`` -- never pydantic's URLs or the list of
    every field. ``prefix`` is put before every path (``pretrain.settings``).
    Of the errors of a union's members only the one that got furthest into the
    value is kept (a list given where a list or a mapping may go is judged as a list).
    """
    import re

    items = list(error.errors())  # type: ignore[attr-defined]
    # pydantic puts a union member's name ("list[int]", "function-after[...]") into loc.
    deepest: dict[tuple[str, ...], int] = {}
    parsed = []
    for item in items:
        raw = [str(part) for part in item.get("loc", ())]
        tags = [i for i, part in enumerate(raw) if "[" in part or part.startswith("function-")]
        head = tuple(raw[: tags[0]]) if tags else None
        loc = [part for i, part in enumerate(raw) if i not in tags]
        if head is not None:
            deepest[head] = max(deepest.get(head, 0), len(raw))
        parsed.append((item, raw, head, loc))
    lines = []
    for item, raw, head, loc in parsed:
        if head is not None and len(raw) < deepest[head]:
            continue
        if item.get("type") == "extra_forbidden" and loc:
            known = _fields_at(model, loc[:-1])
            where = ".".join(p for p in [prefix, *loc[:-1]] if p) or "(top level)"
            lines.append(f"{where}: unknown key {loc[-1]!r}{did_you_mean(loc[-1], known)}")
            continue
        where = ".".join(p for p in [prefix, *loc] if p)
        if item.get("type") == "missing":
            lines.append(f"{where or '(top level)'}: required, not given")
            continue
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        message = re.sub(r"^Input should", "should", message)
        text = f"{where}: {message}" if where else message
        if "input" in item and not isinstance(item["input"], dict):
            got = repr(item["input"])
            text += f", got {got if len(got) <= 60 else got[:57] + '...'}"
            expected = str((item.get("ctx") or {}).get("expected", ""))
            if item.get("type") in ("literal_error", "enum") and expected:
                text += did_you_mean(item["input"], re.findall(r"'([^']*)'", expected))
        lines.append(text)
    return list(dict.fromkeys(lines))


def _fields_at(model: type, loc: Sequence[str]) -> list[str]:
    """Field names of the (nested) pydantic model found by following ``loc`` from ``model``."""
    import typing

    from pydantic import BaseModel

    def models_in(annotation: object) -> list[type]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in typing.get_args(annotation) for m in models_in(arg)]

    current: list[type] = [model]
    for part in loc:
        if part.isdigit():  # a list index: stay on the list's item model
            continue
        found = [
            nested
            for m in current
            if part in m.model_fields  # type: ignore[attr-defined]
            for nested in models_in(m.model_fields[part].annotation)  # type: ignore[attr-defined]
        ]
        if not found:
            return []
        current = found
    return sorted({name for m in current for name in m.model_fields})  # type: ignore[attr-defined]
