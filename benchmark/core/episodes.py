"""Few-NERD's own benchmark: N-way K~2K-shot episodes, sampled or read from official files.

An episode has N fine types, a support set holding K to 2K instances of each and a query set
holding Q to 2Q of each; an instance is a maximal run of one IO label (Few-NERD's count). Every
sentence of an episode has at least one entity, and all its entities are of the N types.
`sample_episodes` re-implements the official greedy sampler (``util/fewshotsampler.py``);
`read_episode_file` and `write_episode_file` handle the official ``episode-data`` jsonl layout:
one episode a line, ``{"support": {"word": [[...]], "label": [[...]]}, "query": {...}, "types": [...]}``.
`meta_training_split` builds meta-training data that shares no sentence and no type with the
episodes' splits.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from benchmark.core.data.fewnerd import Sentence, make_sentence
from benchmark.core.errors import BenchmarkError, ConfigError, DataError
from benchmark.core.labels import FEWNERD_FINE_TYPES
from benchmark.core.spans import OUTSIDE

#: How many sets of target types `sample_episodes` tries for one episode before it gives up.
MAX_TRIES = 100


@dataclass(frozen=True)
class EpisodeSetting:
    """N-way K~2K-shot: ``n`` types an episode, ``k`` to ``2k`` support instances of each."""

    n: int
    k: int

    def __post_init__(self) -> None:
        if self.n < 1 or self.k < 1:
            raise ConfigError(f"an episode setting needs N ≥ 1 and K ≥ 1, got N={self.n}, K={self.k}")

    @property
    def name(self) -> str:
        """``5-way-1~2-shot``."""
        return f"{self.n}-way-{self.k}~{2 * self.k}-shot"

    @classmethod
    def parse(cls, text: str) -> EpisodeSetting:
        """``5-way-1~2-shot`` (its `name`) or the short ``5-1`` (N-K, as the official file names)."""
        if match := re.fullmatch(r"(\d+)-way-(\d+)~(\d+)-shot", text.strip()):
            n, k, twice = (int(g) for g in match.groups())
            if twice == 2 * k:
                return cls(n, k)
        elif match := re.fullmatch(r"(\d+)-(\d+)", text.strip()):
            return cls(int(match[1]), int(match[2]))
        raise ConfigError(f"episode setting {text!r}: expected 'N-way-K~2K-shot' (such as '5-way-1~2-shot') or 'N-K'")


#: The query shots Q of each setting in Few-NERD's README recipes (``--Q``; its released episode
#: files do not document theirs), by (N, K).
QUERY_SHOTS: dict[tuple[int, int], int] = {(5, 1): 1, (5, 5): 5, (10, 1): 1, (10, 5): 1}

#: The four settings of the Few-NERD paper, in its order.
SETTINGS: tuple[EpisodeSetting, ...] = (
    EpisodeSetting(5, 1),
    EpisodeSetting(5, 5),
    EpisodeSetting(10, 1),
    EpisodeSetting(10, 5),
)


@dataclass(frozen=True)
class Episode:
    """N types, a support set and a query set; labels other than ``types`` read ``O``.

    A sampled sentence keeps the ``id`` of the one it was drawn from (its index in its split); a
    sentence read from a file gets a running index over the file (support before query, episode
    after episode).
    """

    types: tuple[str, ...]
    support: tuple[Sentence, ...]
    query: tuple[Sentence, ...]


def meta_training_split(
    train: Sequence[Sentence], held_out: Sequence[Sentence]
) -> tuple[tuple[Sentence, ...], tuple[str, ...]]:
    """Meta-training sentences for episodes drawn from ``held_out`` (dev and test): the sentences of
    ``train`` that no held-out sentence repeats (compared by the sha256 of the space-joined tokens),
    every label of a type that occurs in ``held_out`` read ``O``, renumbered from 0; and the
    training types (those of ``train`` outside ``held_out``'s), sorted.

    With Few-NERD's own ``inter/train`` (whose types are disjoint from dev's and test's) only
    sentences repeated in dev or test are dropped; with the embedded train split (a re-split of
    the supervised dev file) it drops the sentences INTER put into dev or test and reads their 30
    types as ``O``. Where ``train`` has no type outside ``held_out``'s, there is nothing to
    meta-train on: no sentences.
    """
    seen = {_tokens_sha256(s.tokens) for s in held_out}
    unseen = set(episode_types(held_out))
    types = tuple(t for t in episode_types(train) if t not in unseen)
    keep = set(types)
    kept = (s for s in train if types and _tokens_sha256(s.tokens) not in seen)
    sentences = tuple(
        make_sentence(i, s.tokens, (x if x in keep else OUTSIDE for x in s.labels)) for i, s in enumerate(kept)
    )
    return sentences, types


def _tokens_sha256(tokens: Sequence[str]) -> str:
    return hashlib.sha256(" ".join(tokens).encode("utf-8")).hexdigest()


def instance_counts(labels: Sequence[str]) -> dict[str, int]:
    """Instances per type in one IO-labelled sentence: maximal runs of one non-O label."""
    counts: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label != OUTSIDE and (i == 0 or labels[i - 1] != label):
            counts[label] = counts.get(label, 0) + 1
    return counts


def episode_types(sentences: Iterable[Sentence]) -> tuple[str, ...]:
    """The types episodes can draw from: every label in ``sentences`` but ``O``, sorted."""
    return tuple(sorted({label for s in sentences for label in s.labels} - {OUTSIDE}))


class _Group:
    """The candidate sentences that share one instance count per type (the sampler's unit)."""

    __slots__ = ("counts", "members", "types")

    def __init__(self, counts: tuple[tuple[str, int], ...]) -> None:
        self.counts = counts
        self.types = frozenset(t for t, _ in counts)
        self.members: list[int] = []


def sample_episodes(
    sentences: Sequence[Sentence],
    setting: EpisodeSetting,
    count: int,
    seed: int,
    query_shots: int | None = None,
    max_draws: int = 10_000,
) -> tuple[Episode, ...]:
    """Few-NERD's greedy sampler, re-implemented: ``count`` episodes from ``sentences``.

    Each episode draws N target types uniformly (without replacement, order kept) from
    `episode_types`. Candidates are the sentences with at least one entity whose types all lie in
    the targets. The support set is filled greedily: a candidate not yet taken is accepted if no
    type would exceed 2K instances and at least one of its types is still below K; it stops when
    all N types have K. The query set is filled the same way with Q = ``query_shots`` from the
    candidates outside the support set. Q defaults to K (the harness passes the Q of Few-NERD's
    README recipes, `QUERY_SHOTS`; the Q of its released episode files is not documented). A
    sentence keeps its ``id``; labels outside the targets (none occur) would read ``O``.

    Distribution: Few-NERD draws candidates uniformly with replacement and skips the ones it
    cannot accept, so each accepted sentence is uniform over the acceptable ones at that point.
    This sampler draws uniformly from exactly those (candidates grouped by their per-type
    instance counts, which decide acceptance), so its episodes follow Few-NERD's distribution,
    without the rejected draws. Where Few-NERD loops forever (no candidate can be accepted while a
    type is short; with no candidate at all it draws new targets), this one starts the episode
    again with new targets; a try also ends
    after ``max_draws`` draws (a safety bound: support and query take at most N·(K+Q) sentences).
    Episodes thus follow Few-NERD's distribution conditioned on finishing. The draws differ from
    Few-NERD's (only acceptable sentences are drawn, from a private generator, with restarts), so
    no seed reproduces its released files.

    One private ``random.Random(seed)`` serves the whole sequence: the same arguments give the
    same episodes, and the first m of ``count`` ≥ m episodes are those of ``count=m``.

    Raises `BenchmarkError` when N exceeds the types present or when `MAX_TRIES` tries of
    one episode all fail.
    """
    q = setting.k if query_shots is None else query_shots
    if count < 0 or q < 1 or max_draws < 1:
        raise BenchmarkError(
            f"sample_episodes needs count ≥ 0, query_shots ≥ 1 and max_draws ≥ 1 (got {count}, {q}, {max_draws})"
        )
    types = episode_types(sentences)
    if setting.n > len(types):
        raise BenchmarkError(
            f"asking for {setting.n}-way episodes, but this split ({len(sentences)} sentences) has only "
            f"{len(types)} types: {', '.join(types) or 'none'}"
        )
    groups: dict[tuple[tuple[str, int], ...], _Group] = {}
    for position, sentence in enumerate(sentences):
        counts = tuple(sorted(instance_counts(sentence.labels).items()))
        if counts:
            groups.setdefault(counts, _Group(counts)).members.append(position)
    units = list(groups.values())
    rng = random.Random(seed)
    episodes = []
    for _ in range(count):
        for _try in range(MAX_TRIES):
            drawn = _try_episode(units, types, setting, q, max_draws, rng)
            if drawn is not None:
                break
        else:
            raise BenchmarkError(
                f"could not draw a {setting.n}-way {setting.k}~{2 * setting.k}-shot episode with {q}~{2 * q}-shot "
                f"query sets from this split ({len(sentences)} sentences): {MAX_TRIES} tries with random target "
                "types all failed; the split is too small or too sparse for this setting"
            )
        targets, support, query = drawn
        keep = set(targets)
        restrict = [
            tuple(
                make_sentence(
                    sentences[i].id, sentences[i].tokens, (x if x in keep else OUTSIDE for x in sentences[i].labels)
                )
                for i in chosen
            )
            for chosen in (support, query)
        ]
        episodes.append(Episode(targets, *restrict))
    return tuple(episodes)


def _try_episode(
    groups: list[_Group], types: tuple[str, ...], setting: EpisodeSetting, q: int, max_draws: int, rng: random.Random
) -> tuple[tuple[str, ...], list[int], list[int]] | None:
    """One try: targets, support and query positions, or None where Few-NERD would loop forever."""
    targets = tuple(rng.sample(types, setting.n))
    keep = set(targets)
    candidates = [g for g in groups if g.types <= keep]
    by_type: dict[str, list[tuple[int, _Group]]] = {t: [] for t in targets}
    available = dict.fromkeys(targets, 0)
    for group in candidates:
        for t, c in group.counts:
            by_type[t].append((c, group))
            available[t] += c * len(group.members)
    if not candidates or any(available[t] < setting.k + q for t in targets):
        return None  # cannot finish: no draw needed to know it
    for pairs in by_type.values():
        pairs.sort(key=lambda pair: -pair[0])  # most instances first (stable: candidate order)
    taken: dict[_Group, set[int]] = {}  # support and query positions, by group
    budget = [max_draws]
    support = _fill(candidates, by_type, setting.k, taken, budget, rng)
    if support is None:
        return None
    query = _fill(candidates, by_type, q, taken, budget, rng)
    if query is None:
        return None
    return targets, support, query


def _fill(
    candidates: list[_Group],
    by_type: dict[str, list[tuple[int, _Group]]],
    shots: int,
    taken: dict[_Group, set[int]],
    budget: list[int],
    rng: random.Random,
) -> list[int] | None:
    """One set: draw uniformly among the acceptable untaken sentences until every target has
    ``shots``; None at a dead end or when the draw budget is spent."""
    counts = dict.fromkeys(by_type, 0)
    # the acceptable groups, with their untaken sentences; as counts only grow, a group that
    # stops being acceptable (a type over 2·shots, or none below shots) leaves for good
    live = {g: len(g.members) - len(taken.get(g, ())) for g in candidates}
    live = {g: n for g, n in live.items() if n}
    capped = dict.fromkeys(by_type, 0)  # by_type[t][:capped[t]] would exceed 2·shots of t

    def enforce_cap(t: str) -> None:
        pairs, room = by_type[t], 2 * shots - counts[t]
        while capped[t] < len(pairs) and pairs[capped[t]][0] > room:
            live.pop(pairs[capped[t]][1], None)
            capped[t] += 1

    for t in by_type:
        enforce_cap(t)
    chosen: list[int] = []
    while any(c < shots for c in counts.values()):
        if not live or budget[0] == 0:
            return None
        budget[0] -= 1
        bounds = list(accumulate(live.values()))
        group = list(live)[bisect_right(bounds, rng.randrange(bounds[-1]))]  # weight: untaken sentences
        used = taken.setdefault(group, set())
        if 2 * len(used) < len(group.members):
            position = group.members[rng.randrange(len(group.members))]
            while position in used:
                position = group.members[rng.randrange(len(group.members))]
        else:
            position = rng.choice([p for p in group.members if p not in used])
        used.add(position)
        chosen.append(position)
        live[group] -= 1
        if not live[group]:
            del live[group]
        for t, c in group.counts:
            counts[t] += c
            enforce_cap(t)
            if counts[t] - c < shots <= counts[t]:  # t is no longer needed
                for _, other in by_type[t]:
                    if other in live and all(counts[u] >= shots for u in other.types):
                        del live[other]
    return chosen


def _record(episode: Episode) -> dict[str, object]:
    """An episode in the official layout."""
    return {
        "support": {
            "word": [list(s.tokens) for s in episode.support],
            "label": [list(s.labels) for s in episode.support],
        },
        "query": {"word": [list(s.tokens) for s in episode.query], "label": [list(s.labels) for s in episode.query]},
        "types": list(episode.types),
    }


def episodes_sha256(episodes: Sequence[Episode]) -> str:
    """sha256 of the episodes' canonical JSON: one line an episode (the official layout, keys
    sorted, no spaces, UTF-8), each ending in a newline. Sentence ids are not part of it."""
    digest = hashlib.sha256()
    for episode in episodes:
        line = json.dumps(_record(episode), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def write_episode_file(path: Path, episodes: Iterable[Episode]) -> None:
    """Write episodes in the official jsonl layout, gzipped where ``path`` ends in ``.gz``."""
    text = "".join(json.dumps(_record(e), ensure_ascii=False) + "\n" for e in episodes).encode("utf-8")
    path.write_bytes(gzip.compress(text, mtime=0) if path.suffix == ".gz" else text)


def official_file(folder: Path, setting: EpisodeSetting) -> Path:
    """A setting's file in Few-NERD's episode-data layout: ``folder/test_<N>_<K>.jsonl``, or the
    same name with ``.gz`` where only that exists."""
    plain = folder / f"test_{setting.n}_{setting.k}.jsonl"
    zipped = plain.with_name(f"{plain.name}.gz")
    return zipped if zipped.is_file() and not plain.is_file() else plain


def read_episode_file(
    path: Path, fine_types: Iterable[str] = FEWNERD_FINE_TYPES, setting: EpisodeSetting | None = None
) -> tuple[Episode, ...]:
    """An official episode-data jsonl file (``.jsonl`` or ``.jsonl.gz``), one episode a line.

    Every line is checked: its layout (exactly ``support``, ``query`` and ``types``; each set
    exactly ``word`` and ``label``, lists of lists of strings), distinct types that are
    ``fine_types``, N of them where a ``setting`` is given, non-empty sets and sentences, as many
    labels as words, and every label ``O`` or one of ``types``. Any failure raises `DataError`
    naming the file and line. Blank lines are skipped.
    """
    known = frozenset(fine_types)
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read an episode file ({error})") from error
    episodes: list[Episode] = []
    next_id = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            episode = _parse_episode(line, next_id)
            unknown = [t for t in episode.types if t not in known]
            if unknown:
                raise ValueError(f"types {unknown} are not Few-NERD fine types")
            if setting is not None and len(episode.types) != setting.n:
                raise ValueError(f"{len(episode.types)} types, but the file is of {setting.name} episodes")
        except ValueError as error:
            raise DataError(f"{path}:{number}: {error}") from None
        episodes.append(episode)
        next_id += len(episode.support) + len(episode.query)
    if not episodes:
        raise DataError(f"{path}: no episodes (an episode file holds one JSON episode a line)")
    return tuple(episodes)


def _parse_episode(line: str, first_id: int) -> Episode:
    """One line of an episode file; ValueError says what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if not isinstance(record, dict) or set(record) != {"support", "query", "types"}:
        found = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"expected an object with keys 'support', 'query', 'types', got {found}")
    types = record["types"]
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t and t != OUTSIDE for t in types):
        raise ValueError("'types' must be a non-empty list of type names (not 'O')")
    if len(set(types)) != len(types):
        raise ValueError(f"'types' repeats a type: {types}")
    valid = {*types, OUTSIDE}
    sets = []
    for name in ("support", "query"):
        part = record[name]
        if not isinstance(part, dict) or set(part) != {"word", "label"}:
            found = sorted(part) if isinstance(part, dict) else type(part).__name__
            raise ValueError(f"{name!r} must be an object with keys 'word', 'label', got {found}")
        words, labels = part["word"], part["label"]
        for field, rows in (("word", words), ("label", labels)):
            if not isinstance(rows, list) or not all(
                isinstance(row, list) and all(isinstance(x, str) for x in row) for row in rows
            ):
                raise ValueError(f"{name}.{field} must be a list of sentences, each a list of strings")
        if not words:
            raise ValueError(f"empty {name} set")
        if len(words) != len(labels):
            raise ValueError(f"{name} has {len(words)} word lists but {len(labels)} label lists")
        sentences = []
        for i, (tokens, tags) in enumerate(zip(words, labels, strict=True)):
            if not tokens:
                raise ValueError(f"{name} sentence {i} has no words")
            if len(tokens) != len(tags):
                raise ValueError(f"{name} sentence {i} has {len(tokens)} words but {len(tags)} labels")
            if unknown := sorted(set(tags) - valid):
                raise ValueError(
                    f"{name} sentence {i} has label {unknown[0]!r}, which is neither 'O' nor one of 'types'"
                )
            sentences.append(make_sentence(first_id + len(sentences) + sum(map(len, sets)), tokens, tags))
        sets.append(tuple(sentences))
    return Episode(tuple(types), sets[0], sets[1])
