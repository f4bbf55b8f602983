"""The ``episodes`` protocol: Few-NERD's N-way K~2K-shot benchmark on types a method never trained on.

A method is fitted once on the protocol's training view (meta-training data; training-free
methods ignore it), then `predict` gets an `EpisodeView`: every episode of every setting, each a
support set (sentences labelled with the episode's N fine types only, every other word ``O``)
and a query set (tokens only). It returns, for each query sentence, spans typed with its
episode's types. Query sentences are numbered across all episodes (`EpisodeView.examples`), so
the one evaluator scores all query sets of a setting together, as Few-NERD's framework sums its
counts over every query set of every test episode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from benchmark.core.data.fewnerd import Sentence
from benchmark.core.episodes import SETTINGS, Episode, EpisodeSetting
from benchmark.core.errors import ProtocolViolation
from benchmark.core.labels import LabelHierarchy
from benchmark.core.protocols import Example, Protocol, View
from benchmark.core.spans import Span

#: the mean over the four settings (the "Avg." column of few-shot NER papers)
AVERAGE = "avg"


def metric_prefix(setting: EpisodeSetting) -> str:
    """Where a setting's metrics are logged (MLflow names allow no ``~``): ``5-way-1to2-shot``."""
    return f"{setting.n}-way-{setting.k}to{2 * setting.k}-shot"


#: what a run of the protocol prints and tables first: the average F1, then each setting's
EPISODE_MAIN_METRICS = (f"{AVERAGE}/fine/micro_f1", *(f"{metric_prefix(s)}/fine/micro_f1" for s in SETTINGS))


@dataclass(frozen=True)
class EpisodeTask:
    """One episode as a method sees it: its setting, its N types, the support set (labelled with
    those types) and the ids of its query sentences in `EpisodeView.examples`."""

    setting: EpisodeSetting
    types: tuple[str, ...]
    support: tuple[Example, ...]
    query: tuple[int, ...]


@dataclass(frozen=True)
class EpisodeView(View):
    """The query sentences of every episode (``examples``, tokens only, numbered 0, 1, … across
    episodes) and the episodes themselves."""

    episodes: tuple[EpisodeTask, ...] = ()

    def sentences(self) -> tuple[tuple[str, ...], ...]:
        """Every distinct token sequence of the view (supports and queries), in a fixed order:
        what a method encodes once for all episodes."""
        seen = dict.fromkeys(e.tokens for task in self.episodes for e in task.support)
        seen.update(dict.fromkeys(e.tokens for e in self.examples))
        return tuple(seen)


@dataclass(frozen=True)
class EpisodeProtocol(Protocol):
    """Few-NERD's episodes: a method returns spans typed with each query sentence's episode types."""

    def episode_view(
        self, sets: Sequence[tuple[EpisodeSetting, Sequence[Episode]]], hierarchy: LabelHierarchy
    ) -> tuple[EpisodeView, list[Sentence]]:
        """The view of episode ``sets`` (one per setting) and the gold query sentences, renumbered
        as the view numbers them."""
        tasks, queries, gold = [], [], []
        for setting, episodes in sets:
            for episode in episodes:
                support = self.train_view(episode.support, "support", hierarchy).examples
                ids = []
                for sentence in episode.query:
                    number = len(gold)
                    spans = tuple(s._replace(sentence_id=number) for s in sentence.spans)
                    gold.append(Sentence(number, sentence.tokens, sentence.labels, spans))
                    queries.append(Example(number, sentence.tokens))
                    ids.append(number)
                tasks.append(EpisodeTask(setting, tuple(episode.types), support, tuple(ids)))
        view = EpisodeView(self.name, "test", tuple(queries), hierarchy, tuple(tasks))
        return view, gold

    def validate(self, predictions: Iterable[Span], view: View) -> list[Span]:
        """The checks of free span prediction, and each span typed with its episode's types."""
        checked = super().validate(predictions, view)
        if isinstance(view, EpisodeView):
            allowed = {i: set(task.types) for task in view.episodes for i in task.query}
            for span in checked:
                if span.label not in allowed.get(span.sentence_id, ()):
                    raise ProtocolViolation(
                        f"{self.name}: prediction {tuple(span)} has a type outside its episode's "
                        f"{sorted(allowed.get(span.sentence_id, ()))}"
                    )
        return checked
