"""Prediction files of one test split, in the formats `benchmark score` reads and
`benchmark export-predictions` writes (the guide's *Scoring your own system*):

- ``jsonl``: one object per test sentence, in any order: ``id`` (its index in the test split)
  and/or ``tokens``, and ``entities``, each ``{"start", "end", "label"[, "score"][, "cluster"]}``
  with token offsets (``end`` exclusive). Every protocol reads it; under ``typing`` and
  ``weak-typing`` the entities must be exactly the gold spans.
- ``fewnerd``: Few-NERD's own text, one ``token<TAB>tag`` line per token, a blank line between
  sentences, every test sentence in test order. Tags are ``O``, a fine type (IO, Few-NERD's
  scheme: a maximal run of one type is one entity) or ``B-``/``I-`` a fine type. ``ner`` only.
- ``spans``: one object per gold span, ``{"id", "start", "end", "label"[, "score"][, "cluster"]}``,
  for ``typing`` and ``weak-typing``.

Reading checks the file against the test split completely and raises one `BenchmarkError`
naming the file, line and sentence of the first problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from benchmark.core.data.fewnerd import Sentence
from benchmark.core.errors import BenchmarkError
from benchmark.core.labels import LabelHierarchy, coarse_of
from benchmark.core.protocols import Protocol
from benchmark.core.spans import OUTSIDE, Span

Format = Literal["jsonl", "fewnerd", "spans"]
FORMATS: tuple[str, ...] = ("jsonl", "fewnerd", "spans")
#: the formats each kind of protocol reads
FORMATS_OF = {"spans": ("jsonl", "fewnerd"), "typing": ("jsonl", "spans")}


def formats_for(protocol: Protocol) -> tuple[str, ...]:
    return FORMATS_OF[protocol.scoring]


def detect_format(path: Path, first: str) -> Format:
    """A file's format from its first non-blank line: a JSON object with ``entities`` is
    ``jsonl``, one with ``start`` is ``spans``; anything else is read as ``fewnerd`` text."""
    if not first.lstrip().startswith("{"):
        return "fewnerd"
    try:
        obj = json.loads(first)
    except json.JSONDecodeError as error:
        raise BenchmarkError(f"{path}:1: not a JSON object ({error.msg})") from None
    if isinstance(obj, dict) and "entities" in obj:
        return "jsonl"
    if isinstance(obj, dict) and "start" in obj:
        return "spans"
    raise BenchmarkError(
        f"{path}:1: a JSON object with neither 'entities' (jsonl: one object per sentence) nor 'start' "
        "(spans: one object per gold span)"
    )


def read_prediction_file(
    path: Path,
    protocol: Protocol,
    test: Sequence[Sentence],
    hierarchy: LabelHierarchy,
    fmt: Format | None = None,
) -> list[Span]:
    """The spans of one prediction file, checked against the test sentences and ``protocol``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BenchmarkError(f"{path}: cannot read it ({error})") from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise BenchmarkError(f"{path}: empty file, no predictions")
    fmt = fmt or detect_format(path, first)
    if fmt not in formats_for(protocol):
        kind = "types the given gold spans" if fmt == "spans" else "finds its own spans"
        raise BenchmarkError(
            f"{path}: a {fmt} file {kind}; --protocol {protocol.name} reads {' or '.join(formats_for(protocol))} "
            "(is it a file for another protocol?)"
        )
    checker = _Checker(path, protocol, test, hierarchy)
    if fmt == "fewnerd":
        spans = checker.fewnerd(lines)
    elif fmt == "jsonl":
        spans = checker.sentences(lines)
    else:
        spans = checker.gold_spans(lines)
    return sorted(spans)


class _Checker:
    """One file's reading: every check, each error naming ``path`` and the line."""

    def __init__(self, path: Path, protocol: Protocol, test: Sequence[Sentence], hierarchy: LabelHierarchy) -> None:
        self.path, self.protocol, self.test = path, protocol, test
        self.fine = set(hierarchy.fine_types)
        self.gold = {(s.sentence_id, s.start, s.end): s.label for sentence in test for s in sentence.spans}

    def error(self, line: int, message: str) -> BenchmarkError:
        return BenchmarkError(f"{self.path}:{line}: {message}")

    def objects(self, lines: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as error:
                raise self.error(number, f"not a JSON object ({error.msg})") from None
            if not isinstance(obj, dict):
                raise self.error(number, "not a JSON object")
            yield number, obj

    def sentence_id(self, number: int, obj: dict[str, Any], by_tokens: dict[tuple[str, ...], list[int]]) -> int:
        """The test sentence an object names by ``id`` (its tokens, if given, must be that
        sentence's) or by ``tokens`` alone (the first unused test sentence with those tokens)."""
        tokens = obj.get("tokens")
        if tokens is not None and not (isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)):
            raise self.error(number, "'tokens' must be a list of strings")
        if "id" in obj:
            sid = obj["id"]
            if not isinstance(sid, int) or isinstance(sid, bool) or not 0 <= sid < len(self.test):
                raise self.error(number, f"id {sid!r} is not a test sentence (ids run from 0 to {len(self.test) - 1})")
            if tokens is not None:
                self.same_tokens(number, sid, tokens)
            return sid
        if tokens is None:
            raise self.error(number, "names no sentence: give its 'id' (index in the test split) or its 'tokens'")
        free = by_tokens.get(tuple(tokens))
        if not free:
            raise self.error(number, f"its tokens match no (unused) test sentence: {' '.join(tokens)[:80]!r}")
        return free.pop(0)

    def same_tokens(self, number: int, sid: int, tokens: Sequence[str]) -> None:
        expected = self.test[sid].tokens
        for i, (theirs, ours) in enumerate(zip(tokens, expected, strict=False)):
            if theirs != ours:
                raise self.error(
                    number, f"sentence {sid}: token {i} is {theirs!r} where the test sentence has {ours!r}"
                )
        if len(tokens) != len(expected):
            raise self.error(
                number, f"sentence {sid}: {len(tokens)} tokens where the test sentence has {len(expected)}"
            )

    def span(self, number: int, sid: int, entity: Any) -> Span:
        """One entity object checked: offsets inside the sentence, a fine label, a finite score."""
        if not isinstance(entity, dict) or not {"start", "end", "label"} <= set(entity):
            raise self.error(number, f"sentence {sid}: an entity needs start, end and label, got {entity!r}")
        start, end, label = entity["start"], entity["end"], entity["label"]
        length = len(self.test[sid].tokens)
        if (
            not all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end))
            or not 0 <= start < end <= length
        ):
            raise self.error(
                number, f"sentence {sid}: offsets [{start}, {end}) lie outside its {length} tokens (end is exclusive)"
            )
        if label not in self.fine:
            raise self.error(number, f"sentence {sid}: label {label!r} is not a Few-NERD fine type (see `list`)")
        score = entity.get("score", 1.0)
        if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
            raise self.error(number, f"sentence {sid}: score {score!r} is not a finite number")
        cluster = entity.get("cluster")
        if cluster is not None and not (isinstance(cluster, int) and not isinstance(cluster, bool) and cluster >= 0):
            raise self.error(number, f"sentence {sid}: cluster {cluster!r} is not a non-negative integer")
        return Span(sid, start, end, label, float(score), cluster)

    def typed_gold(self, number: int, span: Span) -> None:
        """Under a typing protocol a span must be a gold span (of the given coarse type)."""
        gold = self.gold.get(span[:3])
        if gold is None:
            raise self.error(
                number,
                f"sentence {span.sentence_id}: [{span.start}, {span.end}) is not a gold span; --protocol "
                f"{self.protocol.name} types exactly the gold spans (is it a file for another protocol?)",
            )
        if self.protocol.test_spans == "coarse" and coarse_of(span.label) != coarse_of(gold):
            raise self.error(
                number,
                f"sentence {span.sentence_id}: {span.label!r} is not under the gold span's given coarse type "
                f"{coarse_of(gold)!r}",
            )

    def no_overlap(self, number: int, spans: Sequence[Span]) -> None:
        end = 0
        for span in sorted(spans):
            if span.start < end:
                raise self.error(number, f"sentence {span.sentence_id}: spans overlap at [{span.start}, {span.end})")
            end = span.end

    def complete(self, spans: Sequence[Span], seen: set[int]) -> list[Span]:
        """Every test sentence (and, under typing, every gold span) present."""
        missing = [i for i in range(len(self.test)) if i not in seen]
        if missing:
            raise BenchmarkError(
                f"{self.path}: {len(missing)} of the {len(self.test)} test sentences are missing "
                f"(first: id {missing[0]})"
            )
        if self.protocol.scoring == "typing":
            self.all_gold(spans)
        return list(spans)

    def all_gold(self, spans: Sequence[Span]) -> None:
        missing = sorted(set(self.gold) - {s[:3] for s in spans})
        if missing:
            sid, start, end = missing[0]
            raise BenchmarkError(
                f"{self.path}: {len(missing)} gold spans have no label (first: sentence {sid}, [{start}, {end}))"
            )

    def sentences(self, lines: Sequence[str]) -> list[Span]:
        """The ``jsonl`` format."""
        by_tokens: dict[tuple[str, ...], list[int]] = {}
        for sentence in self.test:
            by_tokens.setdefault(sentence.tokens, []).append(sentence.id)
        spans: list[Span] = []
        seen: dict[int, int] = {}
        for number, obj in self.objects(lines):
            sid = self.sentence_id(number, obj, by_tokens)
            if sid in seen:
                raise self.error(number, f"sentence {sid} again (first on line {seen[sid]})")
            seen[sid] = number
            free = by_tokens[self.test[sid].tokens]
            if sid in free:  # named by id: no tokens-only line may take it
                free.remove(sid)
            entities = obj.get("entities")
            if not isinstance(entities, list):
                raise self.error(number, f"sentence {sid}: 'entities' must be a list")
            found = [self.span(number, sid, e) for e in entities]
            self.checked(number, found)
            spans += found
        return self.complete(spans, set(seen))

    def checked(self, number: int, found: Sequence[Span]) -> None:
        keys = [s[:3] for s in found]
        if len(set(keys)) != len(keys):
            repeated = next(k for k in keys if keys.count(k) > 1)
            raise self.error(number, f"sentence {repeated[0]}: span [{repeated[1]}, {repeated[2]}) twice")
        if self.protocol.scoring == "typing":
            for span in found:
                self.typed_gold(number, span)
        else:
            self.no_overlap(number, found)

    def gold_spans(self, lines: Sequence[str]) -> list[Span]:
        """The ``spans`` format."""
        spans: list[Span] = []
        seen: dict[tuple[int, int, int], int] = {}
        for number, obj in self.objects(lines):
            if "id" not in obj:
                raise self.error(number, "a span needs the 'id' of its test sentence")
            sid = self.sentence_id(number, {"id": obj["id"], "tokens": obj.get("tokens")}, {})
            span = self.span(number, sid, obj)
            if span[:3] in seen:
                raise self.error(
                    number, f"sentence {sid}: span [{span.start}, {span.end}) again (line {seen[span[:3]]})"
                )
            seen[span[:3]] = number
            self.typed_gold(number, span)
            spans.append(span)
        self.all_gold(spans)
        return spans

    def fewnerd(self, lines: Sequence[str]) -> list[Span]:
        """The ``fewnerd`` two-column format, sentences in test order."""
        spans: list[Span] = []
        blocks = list(_blocks(lines))
        for sid, (first_line, rows) in enumerate(blocks):
            if sid >= len(self.test):
                raise self.error(first_line, f"sentence {sid} is one more than the {len(self.test)} test sentences")
            expected = self.test[sid].tokens
            tags = []
            for offset, (number, token, tag) in enumerate(rows):
                if tag is None:
                    raise self.error(number, f"sentence {sid}: expected 'token<TAB>tag', got {token!r}")
                if offset >= len(expected):
                    raise self.error(number, f"sentence {sid}: more tokens than the test sentence's {len(expected)}")
                if token != expected[offset]:
                    raise self.error(
                        number, f"sentence {sid}: token {offset} is {token!r} where the test sentence has "
                        f"{expected[offset]!r}"
                    )  # fmt: skip
                label = tag[2:] if tag[:2] in ("B-", "I-") else tag
                if label != OUTSIDE and label not in self.fine:
                    raise self.error(number, f"sentence {sid}: tag {tag!r} is not O or a Few-NERD fine type")
                tags.append(tag)
            if len(rows) != len(expected):
                raise self.error(
                    rows[-1][0], f"sentence {sid}: {len(rows)} tokens where the test sentence has {len(expected)}"
                )
            spans += tagged_spans(sid, tags)
        if len(blocks) < len(self.test):
            raise BenchmarkError(
                f"{self.path}: {len(blocks)} sentences where the test split has {len(self.test)} (first missing: "
                f"sentence {len(blocks)})"
            )
        return spans


def _blocks(lines: Sequence[str]) -> Iterator[tuple[int, list[tuple[int, str, str | None]]]]:
    """Blank-line separated blocks: (first line number, [(line number, token, tag or None)])."""
    rows: list[tuple[int, str, str | None]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            if rows:
                yield rows[0][0], rows
            rows = []
            continue
        if "\t" in line:
            token, _, tag = line.rpartition("\t")
            rows.append((number, token, tag.strip()))
        else:
            parts = line.split()
            rows.append((number, parts[0], parts[1]) if len(parts) == 2 else (number, line, None))
    if rows:
        yield rows[0][0], rows


def tagged_spans(sentence_id: int, tags: Sequence[str]) -> list[Span]:
    """Spans of IO or BIO tags: ``B-t`` begins an entity; ``t`` or ``I-t`` continues an entity of
    type ``t`` and otherwise begins one; ``O`` ends it (for IO tags: Few-NERD's maximal runs)."""
    spans: list[Span] = []
    start, current = 0, OUTSIDE
    for i, tag in enumerate([*tags, OUTSIDE]):
        begins = tag.startswith("B-")
        label = tag[2:] if tag[:2] in ("B-", "I-") else tag
        if label != current or begins or label == OUTSIDE:
            if current != OUTSIDE:
                spans.append(Span(sentence_id, start, i, current))
            start, current = i, label
    return spans


def write_prediction_file(
    path: Path, fmt: Format, predictions: Sequence[Span], test: Sequence[Sentence], protocol: Protocol
) -> None:
    """``predictions`` in ``fmt`` (what `read_prediction_file` reads back). The ``fewnerd`` format
    carries no scores or clusters, and tags ``B-`` only an entity that directly follows one of
    the same type (where IO would merge the two)."""
    if fmt not in formats_for(protocol):
        raise BenchmarkError(f"--format {fmt}: --protocol {protocol.name} runs are written as "
                             f"{' or '.join(formats_for(protocol))}")  # fmt: skip
    by_sentence: dict[int, list[Span]] = {}
    for span in sorted(predictions):
        by_sentence.setdefault(span.sentence_id, []).append(span)
    lines = []
    if fmt == "spans":
        lines = [
            json.dumps({"id": s.sentence_id, "start": s.start, "end": s.end, **_fields(s)}) for s in sorted(predictions)
        ]
    elif fmt == "jsonl":
        for sentence in test:
            entities = [{"start": s.start, "end": s.end, **_fields(s)} for s in by_sentence.get(sentence.id, [])]
            lines.append(json.dumps({"id": sentence.id, "tokens": list(sentence.tokens), "entities": entities}))
    else:
        for sentence in test:
            tags = [OUTSIDE] * len(sentence.tokens)
            previous: Span | None = None
            for s in by_sentence.get(sentence.id, []):
                adjacent = previous is not None and previous.end == s.start and previous.label == s.label
                tags[s.start : s.end] = [s.label] * (s.end - s.start)
                if adjacent:
                    tags[s.start] = f"B-{s.label}"
                previous = s
            lines += [f"{token}\t{tag}" for token, tag in zip(sentence.tokens, tags, strict=True)] + [""]
        lines = lines[:-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _fields(span: Span) -> dict[str, Any]:
    fields: dict[str, Any] = {"label": span.label, "score": float(span.score)}
    return fields if span.cluster is None else {**fields, "cluster": int(span.cluster)}
