"""Reading a study: a YAML file or a bundled study by name, ``--set KEY=VALUE``
overrides by dotted path, validation into :class:`cape.study.config.StudyConfig`
and the whole-study check."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cape.errors import CapeError, did_you_mean, validation_messages
from cape.study.config import StudyConfig


def set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.0.c`` in nested dicts and lists, creating mappings on the way.

    Raises:
        CapeError: a list index that is not a number or past the list's end, or a
            path through a value that is neither a mapping nor a list.
    """
    parts = key.split(".")
    node: Any = values
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the study"
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise CapeError(
                    f"{where} is a list of {len(node)}: {part!r} is not an index 0-{len(node) - 1}"
                )
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise CapeError(f"{where} is {node!r}, not a mapping: it has no key {part!r}")


def bundled_study(name: str) -> str | None:
    """Text of a study bundled with CAPE (``demo``, ``demo-quick``, ``public``, ...), or None."""
    resource = resources.files("cape") / "studies" / f"{name}.yaml"
    return resource.read_text() if resource.is_file() else None


def bundled_studies() -> list[str]:
    """Names of the studies bundled with CAPE."""
    folder = resources.files("cape") / "studies"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_study(
    path_or_name: str | Path, overrides: Sequence[str] = (), check: bool = True
) -> StudyConfig:
    """Read a study file (or a bundled study by name) and apply ``KEY=VALUE`` overrides.

    Overrides use dotted paths (``pretrain.settings.epochs=3``,
    ``cohorts.0.source=/data/ptb-xl``); values are parsed as YAML. With ``check``
    the whole study is checked as well (:func:`cape.study.check.check_study`:
    pretraining settings of every run, cohorts named by the protocols, sweep
    cells); missing cohort sources are left to the run.

    Raises:
        CapeError: unreadable file, bad override, or a setting that fails validation,
            one line per problem, each naming the study and the key.
    """
    path = Path(path_or_name)
    if path.is_file():
        text, source = path.read_text(), f"study {path}"
    else:
        bundled = bundled_study(str(path_or_name))
        if bundled is None:
            raise CapeError(
                f"study {path_or_name} is neither a file nor a bundled study "
                f"({', '.join(bundled_studies())})" + did_you_mean(path_or_name, bundled_studies())
            )
        text, source = bundled, f"study {path_or_name}.yaml"
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        first = " ".join(str(error).split())
        raise CapeError(f"{source}: not valid YAML: {first}") from None
    if not isinstance(values, dict):
        raise CapeError(f"{source}: a study must be a YAML mapping of sections")
    if overrides:
        from cape.study.check import key_problem

        for item in overrides:
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise CapeError(f"--set {item!r}: expected KEY=VALUE")
            problem = key_problem(key)
            if problem:
                raise CapeError(f"--set {item!r}: {problem}")
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                raise CapeError(f"--set {item!r}: {raw!r} is not a YAML value") from None
            try:
                set_dotted(values, key, value)
            except CapeError as error:
                raise CapeError(f"--set {item!r}: {error}") from None
        source += " with --set"
    try:
        config = StudyConfig.model_validate(values)
    except ValidationError as error:
        lines = validation_messages(error, StudyConfig)
        raise CapeError("\n".join(f"{source}: {line}" for line in lines)) from None
    if check:
        from cape.study.check import check_study

        problems = check_study(config).problems
        if problems:
            raise CapeError("\n".join(f"{source}: {line}" for line in problems))
    return config
