"""Settings: defaults, TOML file, --set overrides, and their errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from benchmark.core.config import (
    config_dict,
    flat_settings,
    parse_assignment,
    read_config_file,
    resolve_config,
)
from benchmark.core.errors import ConfigError
from benchmark.run.record import RunConfig


@dataclass(frozen=True)
class Example:
    lr: float = 1e-3
    epochs: int = 3
    mode: Literal["frozen", "finetune"] = "frozen"
    layers: tuple[int, ...] = (-1,)
    encoder: str = "minilm"
    limit: int | None = None
    verbose: bool = False


def test_defaults_file_then_set(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('lr = 0.01\nmode = "finetune"\nlayers = [1, 2]\n')
    config = resolve_config(Example, path, ["lr=5e-5", "encoder=mpnet", "limit=10", "verbose=true"])
    assert config == Example(lr=5e-5, epochs=3, mode="finetune", layers=(1, 2), encoder="mpnet", limit=10, verbose=True)


def test_round_trip_through_dict():
    config = Example(epochs=7, layers=(3,))
    assert resolve_config(Example, None, [f"{k}={v!r}".replace("'", '"') for k, v in []]) == Example()
    values = config_dict(config)
    assert values["layers"] == [3]
    rebuilt = resolve_config(Example, None, ["epochs=7", "layers=[3]"])
    assert rebuilt == config


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("nope=1", "'nope' is not a setting of this method; valid settings: lr, epochs"),
        ("epochs=1.5", "epochs: expected int, got 1.5"),
        ("mode=fast", "'fast' is not one of 'frozen', 'finetune'"),
        ("lr", "expected key=value"),
        ("layers=[1,", "cannot parse the value"),
        ("verbose=yes", "expected bool"),
    ],
)
def test_bad_settings(assignment, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(Example, None, [assignment])


def test_bad_config_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = = 1\n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        resolve_config(Example, broken)
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read config file"):
        resolve_config(Example, tmp_path / "missing.toml")
    table = tmp_path / "table.toml"
    table.write_text("[model]\nlr = 1\n")
    with pytest.raises(ConfigError, match=r"table.toml: 'model.lr' is not a setting of this method"):
        resolve_config(Example, table)


@dataclass(frozen=True)
class Part:
    name: str = "minilm"
    layer: int = -1
    window: int | None = None

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 8:
            raise ConfigError(f"window must be at least 8, got {self.window}")


@dataclass(frozen=True)
class Composite:
    encoder: Part = Part(layer=2)  # a part's default as the method gives it
    hidden: int = 0


def test_nested_settings_by_dotted_name_from_every_source(tmp_path):
    tables = tmp_path / "tables.toml"
    tables.write_text('hidden = 8\n[encoder]\nname = "mpnet"\n')
    assert resolve_config(Composite, tables) == Composite(Part("mpnet", layer=2), hidden=8)
    keys = tmp_path / "keys.toml"
    keys.write_text("encoder.layer = 4\n")
    assert read_config_file(keys) == {"encoder.layer": 4}
    config = resolve_config(Composite, keys, ["encoder.window=16"], ("v", {"encoder.name": "x"}), {"hidden": 3})
    assert config == Composite(Part("x", layer=4, window=16), hidden=3)
    assert config_dict(config) == {"encoder": {"name": "x", "layer": 4, "window": 16}, "hidden": 3}
    assert flat_settings(config) == {"encoder.name": "x", "encoder.layer": 4, "encoder.window": 16, "hidden": 3}
    assert resolve_config(Composite, None, [f"{k}={v}" for k, v in flat_settings(config).items()]) == config


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (["layer=4"], "--set: 'layer' is now 'encoder.layer'"),
        (["encoder=mpnet"], "--set: 'encoder' is a group of settings: set 'encoder.name' .its settings: name, layer"),
        (["encoder.layer=x"], "--set: encoder.layer: expected int, got 'x'"),
        (["encoder.window=4"], "encoder: window must be at least 8, got 4"),
        (["encoder.depth=4"], "'encoder.depth' is not a setting of this method; valid settings: encoder.name, "),
        ({"window": 16}, "--grid: 'window' is now 'encoder.window'"),
    ],
)
def test_old_and_wrong_nested_names_are_refused_naming_the_new_one(source, message):
    assignments, point = (source, None) if isinstance(source, list) else ((), source)
    with pytest.raises(ConfigError, match=message):
        resolve_config(Composite, None, assignments, point=point)


def test_an_old_name_in_a_config_file_names_the_new_one(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text("layer = 4\n")
    with pytest.raises(ConfigError, match=r"old.toml: 'layer' is now 'encoder.layer'"):
        resolve_config(Composite, old)


def test_bare_strings_and_toml_values():
    assert parse_assignment("encoder=bert-base-cased") == ("encoder", "bert-base-cased")
    assert parse_assignment("layers=[1, 2]") == ("layers", [1, 2])
    assert parse_assignment("path=/tmp/x") == ("path", "/tmp/x")


def test_run_config_names_and_keys_runs():
    run = RunConfig(
        method="eigproj", label="eigproj:tuned", protocol="weak-typing", dataset="embedded", dataset_sha256="abc",
        seed=1, config={"k": 5}, scored_on="test", provenance="dev", evaluator_version="1.0",
        code_version="deadbeef", code_sha256="c0de", packages={"torch": "2"},
    )  # fmt: skip
    assert run.name == "eigproj:tuned:protocol=weak-typing,seed=1"
    assert run.key == RunConfig(**{**run.__dict__}).key
    for described in ({"code_version": "another-commit"}, {"label": "eigproj [k=5]"}, {"provenance": "custom"}):
        assert run.key == RunConfig(**{**run.__dict__, **described}).key  # the same predictions
    for changed in ({"seed": 2}, {"config": {"k": 6}}, {"code_sha256": "f00d"}, {"packages": {"torch": "3"}},
                    {"scored_on": "dev"}):  # fmt: skip
        assert run.key != RunConfig(**{**run.__dict__, **changed}).key
