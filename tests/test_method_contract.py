"""The battery every registered method passes, on ~200 real sentences per protocol it supports."""

from __future__ import annotations

import pickle
import sys
import tempfile
from pathlib import Path

import pytest

from benchmark.core.cache import FeatureCache
from benchmark.core.config import flat_settings, format_value, resolve_config
from benchmark.core.errors import NotFittedError
from benchmark.core.fit import fit_predict
from benchmark.core.labels import FEWNERD_FINE_TYPES
from benchmark.core.method import PROVENANCES, Method, Settings
from benchmark.core.protocols import withhold_coarse
from benchmark.core.registry import METHODS, PROTOCOLS
from benchmark.run.plan import RunRequest, comparison_requests, plan_run

#: cheaper settings for methods whose defaults are sized for the full run
FAST = {
    "eigproj": ["lime_entities=40", "lime_samples=16", "tagger.epochs=2", "pca_dims=8", "k=4"],
    "span-bilstm-attn": ["epochs=2"],
    "hier-soft": ["epochs=2", "pretrain_epochs=1"],
    "cofee": [
        *("hidden=128", "batch_size=4", "lr=0.003", "gazetteer.fraction=1.0", "clusters=8"),
        *("esi_epochs=1", "nee_epochs=3", "patience=3", "fet_epochs=2", "epochs=2"),
    ],
}
CASES = [(name, p) for name in METHODS.names() for p in PROTOCOLS if p in METHODS.get(name).protocols]
#: methods that train a network epoch by epoch, and the prefix of the curve of the network that
#: makes their predictions (eigproj trains only its coarse tagger, a stage: its curve is prefixed)
TRAINED = {"tagger": "", "eigproj": "coarse-tagger/", "hier-soft": "", "span-bilstm-attn": "", "cofee": ""}


def _request_id(request: RunRequest) -> str:
    return f"{request.method}:{request.variant or 'defaults'}:{request.protocol}"


def _fit_predict(name, protocol, views, tmp_path, seed=1, points=None, settings=()):
    """The harness's own fit and predict (`fit_predict`) of ``name`` with its `FAST` settings."""
    train, dev, test = views(protocol)
    cls = METHODS.get(name)
    method = cls(resolve_config(cls.Config, None, [*FAST.get(name, []), *settings]))
    collected = [] if points is None else points

    def log(metrics: dict[str, float], step: int) -> None:
        collected.extend((k, v, step) for k, v in metrics.items())

    scratch = Path(tempfile.mkdtemp(dir=tmp_path))
    predictions, _ = fit_predict(method, PROTOCOLS[protocol], (train, dev), test, seed, FeatureCache(), scratch, log)
    return method, predictions


def test_every_method_declares_its_contract():
    for name in METHODS.names():
        cls = METHODS.get(name)
        assert issubclass(cls, Method)
        assert cls.protocols
        assert cls.protocols <= set(PROTOCOLS)
        assert cls.default_protocol is None or cls.default_protocol in cls.protocols
        assert cls.__doc__
        assert cls.Config.__dataclass_params__.frozen
        # the defaults train no encoder weights; a method predicting with the user's model is `external` until declared
        assert cls.regime(cls.Config()) == ("external" if getattr(cls, "declares_provenance", False) else "frozen")
    for name in ("tagger", "hier-soft"):
        cls = METHODS.get(name)
        assert cls.regime(resolve_config(cls.Config, None, ["mode='finetune'"])) == "finetuned"


def test_every_setting_set_declares_how_it_was_chosen():
    """DESIGN §7 in code: the defaults and every variant carry a provenance and a reason, and a
    `dev` one names the recorded sweep that chose it in the method's card."""
    for name in METHODS.names():
        cls = METHODS.get(name)
        assert isinstance(cls.__dict__.get("defaults"), Settings), f"{name} declares no provenance of its defaults"
        assert not cls.defaults.overrides
        for variant, chosen in {"defaults": cls.defaults, **cls.variants}.items():
            assert isinstance(chosen, Settings), f"{name}:{variant}"
            assert chosen.provenance in PROVENANCES, f"{name}:{variant}"
            assert chosen.why, f"{name}:{variant}"
            resolve_config(cls.Config, preset=(variant, chosen.overrides))  # the settings exist
            if chosen.provenance == "dev":
                card = Path(sys.modules[cls.__module__].__file__).with_name("README.md")
                text = card.read_text() if card.is_file() else ""
                sweeps = [line for line in text.splitlines() if f"python -m benchmark sweep --method {name} " in line]
                assert sweeps, f"{name}:{variant} is `dev` but {card} quotes no `benchmark sweep --method {name}`"
                # the quoted sweep varied what the variant sets, or fixed it by its base (--variant, --set):
                # e.g. span-bilstm-attn's contextual features are the option compared, its layer is swept
                assert any(_sweep_covers(line, cls, chosen) for line in sweeps), (
                    f"{name}:{variant}: no quoted sweep varies or fixes all of {sorted(chosen.decided)}"
                )


def _sweep_covers(line: str, cls, chosen: Settings) -> bool:
    words = line.split()
    base = {}
    if "--variant" in words:
        base = dict(cls.variants[words[words.index("--variant") + 1]].overrides)
    fixed = {w.split("=")[0] for i, w in enumerate(words) if i and words[i - 1] == "--set"}
    grid = {w.split("=")[0] for i, w in enumerate(words) if i and words[i - 1] == "--grid"}
    return bool(grid & chosen.decided) and all(
        key in grid or key in fixed or (key in base and base[key] == chosen.overrides.get(key))
        for key in chosen.decided
    )


WEAK = [name for name, protocol in CASES if protocol == "weak-typing"]


@pytest.mark.parametrize("name", WEAK)
def test_weak_typing_methods_type_spans_whose_coarse_type_is_withheld(name, views, tmp_path):
    """What a weak-typing sweep scores: with the coarse type withheld a method may pick any fine type."""
    method, _ = _fit_predict(name, "weak-typing", views, tmp_path)
    blind = withhold_coarse(views("weak-typing")[2])
    predictions = PROTOCOLS["weak-typing"].validate(method.predict(blind), blind)
    assert len(predictions) == sum(len(e.spans) for e in blind.examples)
    assert len({p.label.split("-")[0] for p in predictions}) > 1


@pytest.mark.parametrize(("name", "protocol"), CASES)
def test_predict_before_fit_is_an_error(name, protocol, views):
    with pytest.raises(NotFittedError, match="before fit"):
        METHODS.get(name)().predict(views(protocol)[2])


@pytest.mark.parametrize(("name", "protocol"), CASES)
def test_predictions_are_valid_and_deterministic(name, protocol, views, tmp_path, tiny_checkpoint):
    points = []
    # checkpoint predicts with a model it is given: a tiny random one over the fine types
    settings = [f"model={tiny_checkpoint(['O', *FEWNERD_FINE_TYPES])}"] if name == "checkpoint" else []
    method, first = _fit_predict(name, protocol, views, tmp_path, points=points, settings=settings)
    _, second = _fit_predict(name, protocol, views, tmp_path, settings=settings)
    assert first == second
    assert first  # a method that predicts nothing is not a baseline
    test = views(protocol)[2]
    assert pickle.loads(pickle.dumps(method)).predict(test) == method.predict(test)
    _check_learning_curves(name, points)


def _check_learning_curves(name: str, points: list[tuple[str, float, int]]) -> None:
    """A trained method logs ``train/loss`` and ``dev/<score>`` once per epoch (steps 1, 2, …) for
    the stage that makes its predictions, and which epoch it kept; the others log nothing."""
    if name not in TRAINED:
        assert points == []
        return
    prefix = TRAINED[name]
    steps = {}
    for key, _, step in points:
        steps.setdefault(key, []).append(step)
    dev = [k for k in steps if k.startswith(f"{prefix}dev/")]
    assert f"{prefix}train/loss" in steps, sorted(steps)
    assert len(dev) == 1, sorted(steps)
    epochs = list(range(1, len(steps[f"{prefix}train/loss"]) + 1))
    assert steps[f"{prefix}train/loss"] == steps[dev[0]] == epochs
    best = [v for k, v, _ in points if k == f"{prefix}best_epoch"]
    assert len(best) == 1
    assert 1 <= best[0] <= len(epochs)
    assert all(v == v and v >= 0 for k, v, _ in points if k.endswith("train/loss"))  # finite, not NaN


@pytest.mark.parametrize("request_", comparison_requests(["all"], None, RunRequest(method="all")), ids=_request_id)
def test_every_default_and_variant_passes_the_harness_checks(request_):
    plan = plan_run(request_)  # settings, protocol and encoder checks, as `run --method all` does
    assert plan.label.startswith(request_.method)


@pytest.mark.parametrize("name", METHODS.names())
def test_config_round_trips_through_settings(name):
    cls = METHODS.get(name)
    assignments = [f"{k}={format_value(v)}" for k, v in flat_settings(cls.Config()).items()]
    assert resolve_config(cls.Config, None, assignments) == cls.Config()
