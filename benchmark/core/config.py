"""Method settings: defaults from the method's ``Config``, then a named variant, then a TOML
file, then ``--set``.

A setting of a nested part is named with dots, as scikit-learn's ``estimator__param`` (``encoder.layer``,
``tagger.hidden``): on the command line, as TOML tables or dotted keys, and in variants.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from benchmark.core.errors import ConfigError

#: settings that moved into a nested group (old name → new name), named in the error an old name gets
RENAMED: dict[str, str] = {
    "encoder": "encoder.name",
    "layer": "encoder.layer",
    "pooling": "encoder.pooling",
    "window": "encoder.window",
    "tagger_hidden": "tagger.hidden",
    "tagger_epochs": "tagger.epochs",
    "gazetteer_fraction": "gazetteer.fraction",
}


def parse_assignment(text: str) -> tuple[str, Any]:
    """``key=value`` with a TOML value (``lr=1e-3``, ``layers=[1,2]``) or a bare string."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set seed_words=10")
    try:
        return key, tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        if not raw or any(c in raw for c in "[]{}\"'="):
            raise ConfigError(f"--set {text!r}: cannot parse the value {raw!r} (TOML syntax)") from None
        return key, raw


def format_value(value: Any) -> str:
    """A setting's value as ``--set`` reads it back: bare words stay bare, None is ``none``, the
    rest is JSON (which TOML parses alike for numbers, booleans, quoted strings and lists)."""
    if value is None:
        return "none"
    if (
        isinstance(value, str)
        and re.fullmatch(r"[A-Za-z_][\w./-]*", value)
        and value not in ("true", "false", "inf", "nan")
    ):
        return value
    return json.dumps(value)


def read_config_file(path: Path) -> dict[str, Any]:
    """A TOML file of settings, its tables and dotted keys as dotted names (``[encoder]`` with
    ``layer = 4``, or ``encoder.layer = 4``: ``{"encoder.layer": 4}``)."""
    return dotted(read_toml(path, "config file"))


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's top table; one `ConfigError` naming the file (and ``what`` it should be) when
    it cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read {what} ({error.strerror})") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from error


def dotted(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted names: ``{"encoder": {"layer": 4}}`` → ``{"encoder.layer": 4}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Check ``value`` against a type hint, converting where it is lossless."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() == "none" and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(v, item, where) for v in value)
    if kind is Any:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is str:
        if isinstance(value, str):
            return value
    else:
        raise ConfigError(f"{where}: unsupported setting type {kind}")
    raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")


def resolve_config(
    config_cls: type,
    file: Path | None = None,
    assignments: Sequence[str] = (),
    preset: tuple[str, Mapping[str, Any]] | None = None,
    point: Mapping[str, Any] | None = None,
) -> Any:
    """The method's config: defaults, overridden by a named ``preset`` (a variant), then by
    ``file``, then by ``key=value`` strings, then by a sweep's grid ``point``. Keys are dotted
    names (`dotted`); a nested part starts from the default the method gives it."""
    kinds = setting_types(config_cls)
    values: dict[str, Any] = {}
    sources = [(f"variant {preset[0]!r}", dict(preset[1]))] if preset else []
    sources += [(str(file), read_config_file(file))] if file else []
    sources += [("--set", dict([parse_assignment(a)])) for a in assignments]
    sources += [("--grid", dict(point))] if point else []
    for source, settings in sources:
        for key, value in dotted(settings).items():
            if key not in kinds:
                raise ConfigError(f"{source}: {_unknown(key, kinds)}")
            values[key] = _coerce(value, kinds[key], f"{source}: {key}")
    return _build(config_cls(), values)


def setting_types(config_cls: type, prefix: str = "") -> dict[str, Any]:
    """Every setting of a config class, nested parts' included, by dotted name → its type hint."""
    hints = typing.get_type_hints(config_cls)
    kinds: dict[str, Any] = {}
    for field in dataclasses.fields(config_cls):
        kind = hints[field.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            kinds.update(setting_types(kind, f"{prefix}{field.name}."))
        else:
            kinds[f"{prefix}{field.name}"] = kind
    return kinds


def _unknown(key: str, kinds: Mapping[str, Any]) -> str:
    """Why ``key`` is not a setting: a group's name, an old name, or a typo."""
    group = [k for k in kinds if k.startswith(f"{key}.")]
    if group:
        first = RENAMED.get(key) or next((k for k in group if k.count(".") == key.count(".") + 1), group[0])
        members = ", ".join(k.removeprefix(f"{key}.") for k in group)
        return f"{key!r} is a group of settings: set {first!r} (its settings: {members})"
    if RENAMED.get(key) in kinds:
        return f"{key!r} is now {RENAMED[key]!r}"
    return f"{key!r} is not a setting of this method; valid settings: {', '.join(kinds)}"


def _build(default: Any, values: Mapping[str, Any], where: str = "") -> Any:
    """``default`` with dotted ``values`` replaced, each nested part rebuilt from its own default
    (so its checks run); an error in a part names it."""
    own: dict[str, Any] = {}
    parts: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        head, _, rest = key.partition(".")
        if rest:
            parts.setdefault(head, {})[rest] = value
        else:
            own[head] = value
    for name, part in parts.items():
        own[name] = _build(getattr(default, name), part, f"{where}{name}.")
    try:
        return dataclasses.replace(default, **own)
    except ConfigError as error:
        if not where:
            raise
        raise ConfigError(f"{where[:-1]}: {error}") from error
    except (ValueError, TypeError) as error:
        part = f" of {where[:-1]}" if where else ""
        raise ConfigError(f"invalid settings{part}: {error}") from error


def config_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-ready values (a nested part as a nested dict)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def flat_settings(config: Any) -> dict[str, Any]:
    """A config's settings by dotted name, as ``--set`` takes them (``{"encoder.layer": -1, …}``)."""
    return dotted(config_dict(config))
