"""Typed configuration: one dataclass per stage, loaded from YAML, overridden from the CLI.

Each stage keeps its config dataclass beside its code (``EmbeddingConfig`` in
``embedding.py`` and so on); this module only knows how to build any of them from plain
data, strictly:

* an unknown key is an error that lists the valid keys;
* a value of the wrong type is an error naming the key, the value and the expected type;
* each dataclass checks its own values in ``__post_init__`` with :func:`expect`.

All of this happens before any work starts.

A YAML file may start from another one: ``extends: local.yaml`` (a path relative to the
file) loads that file first and merges this one over it, section by section, so a method's
config holds only what differs from the shared base.

Example::

    data = load_yaml("ray_configs/lumi_local.yaml")      # local.yaml + the lumi section
    cfg = from_dict(JobConfig, apply_overrides(data, ["clustering.n_clusters=77"]))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


def expect(condition: bool, key: str, value: Any, expected: str) -> None:
    """Raise ``ConfigError`` saying ``key=value`` and what was expected, unless ``condition``."""
    if not condition:
        raise ConfigError(f"{key}={value!r}: expected {expected}")


def expect_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    choices = list(choices)
    expect(value in choices, key, value, f"one of {choices}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (recursing into dataclasses and lists)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}={value!r}: expected {' or '.join(map(_type_name, options))}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r}: expected a list")
        (item_type, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(item_type, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r}: expected a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 2e-4 (no dot) as a string
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if tp in (int, float, str, bool):
        if isinstance(value, bool) and tp is not bool:
            raise ConfigError(f"{key}={value!r}: expected {tp.__name__}, got a boolean")
        if not isinstance(value, tp):
            raise ConfigError(f"{key}={value!r}: expected {tp.__name__}, got {type(value).__name__}")
        return value
    return value


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    label = where or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping of keys for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown key(s) {[prefix + k for k in unknown]}; valid keys of {label}: {names}. "
            "Check the spelling in the YAML file or the command-line override."
        )
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{where}.{err}" if where else str(err)) from None


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to nested ``data``."""
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"override {item!r}: expected the form section.key=value, "
                "e.g. clustering.n_clusters=77"
            )
        node = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is a value, not a section")
        node[leaf] = yaml.safe_load(raw) if raw.strip() else ""
    return data


EXTENDS = "extends"


def merge(base: dict, override: dict) -> dict:
    """``override`` over ``base``: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML config file as plain data, with its ``extends:`` chain merged in."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {str(path)!r} not found; pass --config with one of the files in "
            "ray_configs/ (e.g. ray_configs/local.yaml)"
        )
    try:
        with path.open() as stream:  # a stream, so that the parser's message names the file and line
            data = yaml.safe_load(stream) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    base = data.pop(EXTENDS, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: {EXTENDS}={base!r}: expected the path of another YAML file, e.g. local.yaml")
    base_path = (path.parent / base).resolve()
    if base_path in _seen:
        raise ConfigError(f"{path}: {EXTENDS} chain loops back to {base_path}")
    return merge(load_yaml(base_path, (*_seen, path.resolve())), data)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def fingerprint(*parts: Any) -> str:
    """Stable short hash of configs / plain data, used to decide whether a stage can be reused."""
    blob = json.dumps(
        [to_dict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
