"""The Few-NERD label hierarchy: 8 coarse types, 66 fine types, ``coarse-fine`` names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from benchmark.core.spans import OUTSIDE

#: The 66 fine types of Few-NERD (official ``data/labels.txt``), in the hub's ClassLabel order.
FEWNERD_FINE_TYPES: tuple[str, ...] = (
    "art-broadcastprogram", "art-film", "art-music", "art-other", "art-painting",
    "art-writtenart", "building-airport", "building-hospital", "building-hotel",
    "building-library", "building-other", "building-restaurant", "building-sportsfacility",
    "building-theater", "event-attack/battle/war/militaryconflict", "event-disaster",
    "event-election", "event-other", "event-protest", "event-sportsevent", "location-GPE",
    "location-bodiesofwater", "location-island", "location-mountain", "location-other",
    "location-park", "location-road/railway/highway/transit", "organization-company",
    "organization-education", "organization-government/governmentagency",
    "organization-media/newspaper", "organization-other", "organization-politicalparty",
    "organization-religion", "organization-showorganization", "organization-sportsleague",
    "organization-sportsteam", "other-astronomything", "other-award", "other-biologything",
    "other-chemicalthing", "other-currency", "other-disease", "other-educationaldegree",
    "other-god", "other-language", "other-law", "other-livingthing", "other-medical",
    "person-actor", "person-artist/author", "person-athlete", "person-director",
    "person-other", "person-politician", "person-scholar", "person-soldier",
    "product-airplane", "product-car", "product-food", "product-game", "product-other",
    "product-ship", "product-software", "product-train", "product-weapon",
)  # fmt: skip


def coarse_of(label: str) -> str:
    """The coarse type of a fine label: the part before the first ``-`` (``O`` stays ``O``)."""
    return label.split("-", 1)[0]


@dataclass(frozen=True)
class LabelHierarchy:
    """Fine types grouped under coarse types; fine names are ``coarse-fine``."""

    fine_types: tuple[str, ...]
    coarse_types: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fine_types", tuple(sorted(set(self.fine_types))))
        coarse = tuple(sorted({coarse_of(f) for f in self.fine_types}))
        object.__setattr__(self, "coarse_types", coarse)

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelHierarchy:
        return cls(tuple(label for label in set(labels) if label != OUTSIDE))

    def fines_of(self, coarse: str | None) -> tuple[str, ...]:
        """The fine types under one coarse type, sorted (all of them for ``None``: a span whose
        coarse type is withheld)."""
        return tuple(f for f in self.fine_types if coarse is None or coarse_of(f) == coarse)

    def fine_name(self, fine: str) -> str:
        """The fine part alone: ``person-politician`` → ``politician``."""
        return fine.split("-", 1)[1]

    def __contains__(self, label: object) -> bool:
        return label in self.fine_types


FEWNERD = LabelHierarchy(FEWNERD_FINE_TYPES)


#: Plain-English spellings of the compound fine names (spelling only: the words of the name,
#: split and without slashes), for label-text embeddings (``label_names=readable``).
READABLE_FINE_NAMES = {
    "broadcastprogram": "broadcast program",
    "writtenart": "written art",
    "sportsfacility": "sports facility",
    "attack/battle/war/militaryconflict": "attack battle war military conflict",
    "sportsevent": "sports event",
    "bodiesofwater": "bodies of water",
    "road/railway/highway/transit": "road railway highway transit",
    "government/governmentagency": "government agency",
    "media/newspaper": "media newspaper",
    "politicalparty": "political party",
    "showorganization": "show organization",
    "sportsleague": "sports league",
    "sportsteam": "sports team",
    "astronomything": "astronomy thing",
    "biologything": "biology thing",
    "chemicalthing": "chemical thing",
    "educationaldegree": "educational degree",
    "livingthing": "living thing",
    "artist/author": "artist author",
}


#: Glosses that replace a fine name by words it does not contain (``label_names=described``):
#: every description any label text uses is in this table.
FINE_NAME_GLOSSES = {
    "GPE": "country city state",  # geo-political entity
}

#: The label-text styles, from the label's own spelling to added descriptions.
LABEL_TEXT_STYLES = ("raw", "readable", "described")


def label_text(fine: str, style: str = "raw") -> str:
    """The text that stands for a fine type: ``"<fine> <coarse>"`` (eigproj §5.2).

    ``raw`` keeps the label's own spelling (``government/governmentagency organization``);
    ``readable`` only spells compounds out (``government agency organization``; ``GPE location``
    stays); ``described`` also replaces the names in `FINE_NAME_GLOSSES` by their gloss
    (``country city state location``).
    """
    if style not in LABEL_TEXT_STYLES:
        raise ValueError(f"label text style {style!r}: expected one of {', '.join(LABEL_TEXT_STYLES)}")
    coarse, name = fine.split("-", 1)
    if style == "described" and name in FINE_NAME_GLOSSES:
        return f"{FINE_NAME_GLOSSES[name]} {coarse}"
    if style in ("readable", "described"):
        name = READABLE_FINE_NAMES.get(name, name)
    return f"{name} {coarse}"
