"""An ``episodes`` run's data and scores: its meta-training sentences, each setting's test
episodes (sampled with Few-NERD's sampler from the test split, or read from the official files),
and per setting the one evaluator's figures over all its query sets, with CIs from resampling
episodes."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.core.data.fewnerd import Corpus, Sentence, load_corpus
from benchmark.core.episodes import (
    QUERY_SHOTS,
    SETTINGS,
    Episode,
    EpisodeSetting,
    episodes_sha256,
    meta_training_split,
    official_file,
    read_episode_file,
    sample_episodes,
)
from benchmark.core.episodic import AVERAGE, EpisodeProtocol, EpisodeView, metric_prefix
from benchmark.core.errors import BenchmarkError
from benchmark.core.labels import LabelHierarchy
from benchmark.core.spans import Span
from benchmark.evaluate import CountTable, episode_metrics, episode_table
from benchmark.run.plan import EpisodeSource


@dataclass(frozen=True)
class MetaTraining:
    """The meta-training sentences of an episodes run, and what a run records of them."""

    sentences: tuple[Sentence, ...]
    types: tuple[str, ...]
    origin: str
    sha256: str

    def describe(self) -> dict[str, object]:
        return {"from": self.origin, "sentences": len(self.sentences), "types": list(self.types), "sha256": self.sha256}


def meta_training(corpus: Corpus) -> MetaTraining:
    """The dataset's own train split (``--data-dir`` with Few-NERD's ``inter/train``), or else the
    embedded train split; either way without a sentence or a type of the dataset's dev and test
    splits (`meta_training_split`). Built once per process and corpus (the driver's key and the
    seeds' runs use the same)."""
    if corpus.sha256 not in _META_TRAINING:
        _META_TRAINING[corpus.sha256] = _meta_training(corpus)
    return _META_TRAINING[corpus.sha256]


_META_TRAINING: dict[str, MetaTraining] = {}


def _meta_training(corpus: Corpus) -> MetaTraining:
    own = "train" in corpus.splits
    train = corpus.split("train") if own else _embedded_train()
    held_out = corpus.split("dev") + corpus.split("test")
    sentences, types = meta_training_split(train, held_out)
    origin = (
        f"{corpus.name}/train ({corpus.split_source('train')})"
        if own
        else f"the embedded train split without the sentences and types of {corpus.name}/dev and {corpus.name}/test"
    )
    digest = Corpus("meta-training", {"train": sentences}, corpus.hierarchy, (origin,)).split_sha256("train")
    return MetaTraining(sentences, types, origin, digest)


@functools.lru_cache(maxsize=1)
def _embedded_train() -> tuple[Sentence, ...]:
    return tuple(load_corpus("embedded", splits=("train",)).split("train"))


def episode_sets(source: EpisodeSource, corpus: Corpus) -> list[tuple[EpisodeSetting, Sequence[Episode]]]:
    """Every setting's test episodes: the official file's, or ``source.count`` sampled from the
    corpus's test split with the setting's seed (`setting_seed`) and the query shots of Few-NERD's
    recipes (`QUERY_SHOTS`). Drawn or read once per process, source and corpus (the files are
    named by their sha256 in ``source.digest``)."""
    key = (source, corpus.sha256)
    if key not in _EPISODE_SETS:
        _EPISODE_SETS[key] = _episode_sets(source, corpus.split("test"))
    return _EPISODE_SETS[key]


_EPISODE_SETS: dict[tuple[EpisodeSource, str], list[tuple[EpisodeSetting, Sequence[Episode]]]] = {}


def _episode_sets(source: EpisodeSource, test: Sequence[Sentence]) -> list[tuple[EpisodeSetting, Sequence[Episode]]]:
    if source.folder is not None:
        return [(s, read_episode_file(official_file(source.folder, s), setting=s)) for s in SETTINGS]
    return [
        (s, sample_episodes(test, s, source.count, seed=setting_seed(source, s), query_shots=QUERY_SHOTS[s.n, s.k]))
        for s in SETTINGS
    ]


def setting_seed(source: EpisodeSource, setting: EpisodeSetting) -> int:
    """The sampler's seed of one setting: 100 × the source's seed + the setting's place in `SETTINGS`."""
    return source.seed * 100 + SETTINGS.index(setting)


def describe(
    source: EpisodeSource, sets: Sequence[tuple[EpisodeSetting, Sequence[Episode]]], training: MetaTraining
) -> dict[str, object]:
    """What a run records of its episodes: where they come from (the sampler's seed of each
    setting and its query shots, or the files with their sha256), per setting the count and
    sha256 of the episode set, and the meta-training data."""
    settings = {}
    for setting, episodes in sets:
        entry: dict[str, object] = {
            "setting": setting.name,
            "episodes": len(episodes),
            "sha256": episodes_sha256(episodes),
        }
        if source.folder is None:
            entry.update(sampler_seed=setting_seed(source, setting), query_shots=QUERY_SHOTS[setting.n, setting.k])
        else:
            entry.update(file=str(official_file(source.folder, setting)))
        settings[metric_prefix(setting)] = entry
    origin = (
        {"sampled": {"seed": source.seed, "count": source.count}}
        if source.folder is None
        else {"files": {"folder": str(source.folder), "sha256": source.digest}}
    )
    return {"source": origin, "settings": settings, "meta_training": training.describe()}


def rebuilt_view(tags: dict[str, str], corpus: Corpus, protocol: EpisodeProtocol) -> tuple[EpisodeView, list[Sentence]]:
    """The view and gold query sentences of a finished run's test episodes, sampled again from
    ``corpus`` with the source its tags name (``episodes/source``), checked against the sha256 it
    recorded for each setting: what a report re-scores and a record checks its predictions on.
    `BenchmarkError` says why they cannot be had (official files, another episode set)."""
    source = EpisodeSource.sampled(tags.get("episodes/source", ""))
    if source is None:
        raise BenchmarkError(f"episodes from {tags.get('episodes/source')!r} cannot be drawn again (official files)")
    key = (source, id(corpus), protocol.name)
    if key not in _REBUILT or _REBUILT[key][0] is not corpus:
        sets = episode_sets(source, corpus)
        drawn = {setting: episodes_sha256(episodes) for setting, episodes in sets}
        _REBUILT[key] = corpus, drawn, protocol.episode_view(sets, corpus.hierarchy)
    _, drawn, view = _REBUILT[key]
    for setting, digest in drawn.items():
        recorded = tags.get(f"episodes/{metric_prefix(setting)}")
        if recorded != digest:
            raise BenchmarkError(
                f"its {setting.name} episodes have sha256 {str(recorded)[:12]}, but {source.name} from "
                f"{corpus.name}/test gives {digest[:12]} (another sampler or test split)"
            )
    return view


#: `rebuilt_view`'s episodes, once per process, source, corpus object and protocol: the corpus
#: (held, so that its id is not reused), each setting's sha256 and the view
_Rebuilt = tuple[Corpus, dict[EpisodeSetting, str], tuple[EpisodeView, list[Sentence]]]
_REBUILT: dict[tuple[EpisodeSource, int, str], _Rebuilt] = {}


def score_episodes(
    view: EpisodeView,
    gold: Sequence[Sentence],
    predictions: Sequence[Span],
    hierarchy: LabelHierarchy,
    resamples: int = 1000,
) -> dict[str, float]:
    """Per setting ``<setting>/<metric>`` (`benchmark.evaluate.episode_metrics` over its query
    sentences, renumbered from 0) and ``avg/fine/micro_{precision,recall,f1}``, the mean of the
    settings' scores."""
    return scored_settings(view, gold, predictions, hierarchy, resamples)[1]


def scored_settings(
    view: EpisodeView,
    gold: Sequence[Sentence],
    predictions: Sequence[Span],
    hierarchy: LabelHierarchy,
    resamples: int = 0,
) -> tuple[dict[str, CountTable], dict[str, float]]:
    """Per setting (its metric prefix) the run's counts summed per episode (`episode_table`), and
    its figures as `score_episodes` gives them (CIs from ``resamples`` resamples of episodes)."""
    tables: dict[str, CountTable] = {}
    metrics: dict[str, float] = {}
    for setting, ids, episode in _settings(view):
        number = {old: new for new, old in enumerate(ids)}
        spans = [Span(number[s.sentence_id], *s[1:]) for i in ids for s in gold[i].spans]
        found = [Span(number[p.sentence_id], *p[1:]) for p in predictions if p.sentence_id in number]
        prefix = metric_prefix(setting)
        tables[prefix] = episode_table(spans, found, [len(gold[i].tokens) for i in ids], episode, hierarchy)
        scores = episode_metrics(tables[prefix], len(spans), len(found), resamples)
        metrics.update({f"{prefix}/{key}": value for key, value in scores.items()})
    settings = list(dict.fromkeys(task.setting for task in view.episodes))
    for name in ("fine/micro_precision", "fine/micro_recall", "fine/micro_f1"):
        metrics[f"{AVERAGE}/{name}"] = float(np.mean([metrics[f"{metric_prefix(s)}/{name}"] for s in settings]))
    return tables, metrics


def _settings(view: EpisodeView):
    """Per setting of the view: the setting, its query sentence ids, and each one's episode (from 0)."""
    for setting in dict.fromkeys(task.setting for task in view.episodes):
        tasks = [task for task in view.episodes if task.setting == setting]
        ids = [i for task in tasks for i in task.query]
        yield setting, ids, np.repeat(np.arange(len(tasks)), [len(task.query) for task in tasks])
