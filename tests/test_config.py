"""Settings: defaults, TOML file, --set overrides, and their errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from benchmark.core.config import RunConfig, config_dict, parse_assignment, resolve_config
from benchmark.core.errors import ConfigError


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
    nested = tmp_path / "nested.toml"
    nested.write_text("[model]\nlr = 1\n")
    with pytest.raises(ConfigError, match=r"\[model\] is a table"):
        resolve_config(Example, nested)


def test_bare_strings_and_toml_values():
    assert parse_assignment("encoder=bert-base-cased") == ("encoder", "bert-base-cased")
    assert parse_assignment("layers=[1, 2]") == ("layers", [1, 2])
    assert parse_assignment("path=/tmp/x") == ("path", "/tmp/x")


def test_run_config_names_and_keys_runs():
    run = RunConfig(
        "eigproj", "weak-typing", "embedded", "abc", 1, {"k": 5}, "paper", "1.0", "deadbeef", "c0de", {"torch": "2"}
    )
    assert run.name == "eigproj:protocol=weak-typing,seed=1"
    assert run.key == RunConfig(**{**run.__dict__}).key
    assert run.key == RunConfig(**{**run.__dict__, "code_version": "another-commit"}).key  # provenance only
    for changed in ({"seed": 2}, {"config": {"k": 6}}, {"code_sha256": "f00d"}, {"packages": {"torch": "3"}}):
        assert run.key != RunConfig(**{**run.__dict__, **changed}).key
