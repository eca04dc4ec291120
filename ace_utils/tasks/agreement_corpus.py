"""Subject-verb agreement: the paper's prompt templates, a synthetic English corpus, a verb parser.

Explained in chapter ``05_agreement_axis``. Everything here is plain Python on words;
tokenisation happens in :mod:`ace_utils.tasks.agreement`.

**Prompts** follow the reference code's templates (joshseth/cores; listed on the book's
page *What we know of the paper's setup*, book/sources.md): a head noun (with irregular
plurals child/children, man/men, woman/women, mouse/mice), an attractor of the *opposite* number after a
connector, one of five styles (base / front / back / there / rel), and the optional prefix
"In the past," that selects was/were instead of is/are. A prompt ends just before the verb.
Label 1 = plural head (the verb should be "are"/"were"), 0 = singular head.

**Train / test split.** The 9 x 9 (head, attractor) pairs are split three ways by
``(i_head + i_attr + k) mod 3`` after seeded permutations of both lists: one third is held out
for test prompts, so every head and every attractor appears in both splits but no
(head, attractor) combination does.

**Corpus.** Full sentences for training our small language models: a subject phrase built
like a prompt (from *training* pairs only, attractor of either number, or none), the verb,
a complement, and 0-2 continuation clauses with their own verbs ("and they are ...",
"and the man near the doors was ...", "because the mice are ..."), all in one tense, ending
in ".". Every (head, attractor) combination in the corpus is a training pair.
Agreement is correct by construction: :func:`parse_verbs` re-derives it from the words,
and the tests check that every sentence parses as agreeing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

__all__ = [
    "HEADS",
    "ATTRACTORS",
    "CONNECTORS",
    "STYLES",
    "FRONT_PADS",
    "BACK_PADS",
    "RELS",
    "PAST_PREFIX",
    "VERBS",
    "Prompt",
    "split_pairs",
    "make_prompts",
    "make_corpus",
    "ParsedVerb",
    "parse_verbs",
    "noun_number",
    "FLIP_DEMO_PROMPTS",
]

# (singular, plural); the reference code's head nouns (book/sources.md)
HEADS: tuple[tuple[str, str], ...] = (
    ("key", "keys"), ("label", "labels"), ("author", "authors"), ("pilot", "pilots"),
    ("teacher", "teachers"), ("child", "children"), ("man", "men"), ("woman", "women"),
    ("mouse", "mice"),
)
ATTRACTORS: tuple[tuple[str, str], ...] = (
    ("cabinet", "cabinets"), ("drawer", "drawers"), ("door", "doors"), ("folder", "folders"),
    ("box", "boxes"), ("room", "rooms"), ("student", "students"), ("guard", "guards"),
    ("desk", "desks"),
)
CONNECTORS: tuple[str, ...] = ("to the", "of the", "near the", "behind the", "next to the", "alongside the")
STYLES: tuple[str, ...] = ("base", "front", "back", "there", "rel")
FRONT_PADS: tuple[str, ...] = (
    "In this ancient kingdom,", "Long ago in a distant land,", "In a busy laboratory,", "Deep under the old castle,",
)
BACK_PADS: tuple[str, ...] = ("in the old kingdom", "in this strange world", "in the present tense", "on most days")
RELS: tuple[str, ...] = ("that the", "that guards the", "that surrounds the", "that hides the")
PAST_PREFIX = "In the past,"
# verb -> (plural?, past?)
VERBS: dict[str, tuple[bool, bool]] = {"is": (False, False), "are": (True, False), "was": (False, True), "were": (True, True)}

# The six flip-demo prompts of the reference code (joshseth/cores), scored in the chapter.
FLIP_DEMO_PROMPTS: tuple[tuple[str, int], ...] = (
    ("The key next to the cabinets", 0), ("The keys next to the cabinet", 1), ("The children near the guard", 1),
    ("In this ancient kingdom, the key to the cabinets", 0), ("There key near the boxes", 0),
    ("There keys near the box", 1),
)

_ADJECTIVES = ("old", "red", "small", "ready", "here", "quiet", "open", "missing", "new", "lost", "clean", "heavy")
_PLACES = ("hall", "garden", "kitchen", "tower", "library", "station")
_THINGS = {"key", "label", "mouse"}  # singular pronoun "it"; people get he/she
_FEMALE = {"woman"}

_NUMBER: dict[str, bool] = {}
for _s, _p in HEADS + ATTRACTORS:
    _NUMBER[_s], _NUMBER[_p] = False, True
_PRONOUNS: dict[str, bool] = {"it": False, "he": False, "she": False, "they": True}


def noun_number(word: str) -> bool | None:
    """True if ``word`` is a plural noun or pronoun of the lexicon, False if singular, None if unknown."""
    w = word.lower()
    if w in _NUMBER:
        return _NUMBER[w]
    return _PRONOUNS.get(w)


@dataclass(frozen=True)
class Prompt:
    """One agreement prompt: the text up to the verb and what generated it.

    ``plural`` is the label (head noun plural); ``past`` whether the "In the past," prefix
    is on (the right verb is then was/were). ``head`` / ``attractor`` are the singular
    lemmas (indices into :data:`HEADS` / :data:`ATTRACTORS` are ``i_head`` / ``i_attr``).
    """

    text: str
    plural: bool
    past: bool
    style: str
    i_head: int
    i_attr: int
    connector: str

    @property
    def head(self) -> str:
        return HEADS[self.i_head][int(self.plural)]

    @property
    def correct_verb(self) -> str:
        return ("were" if self.plural else "was") if self.past else ("are" if self.plural else "is")


def split_pairs(seed: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(train, test) lists of (i_head, i_attr) pairs: 54 train, 27 test, disjoint.

    Seeded permutations of heads and attractors, then test = pairs with
    ``(rank_head + rank_attr) % 3 == 0``: every head and attractor has 3 test partners.
    """
    rng = random.Random(f"pairs-{seed}")
    ph, pa = list(range(len(HEADS))), list(range(len(ATTRACTORS)))
    rng.shuffle(ph)
    rng.shuffle(pa)
    rh = {h: i for i, h in enumerate(ph)}
    ra = {a: i for i, a in enumerate(pa)}
    train, test = [], []
    for h in range(len(HEADS)):
        for a in range(len(ATTRACTORS)):
            (test if (rh[h] + ra[a]) % 3 == 0 else train).append((h, a))
    return train, test


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _subject_phrase(rng: random.Random, h: int, plural: bool, a: int | None, attr_plural: bool, style: str,
                    past: bool) -> tuple[str, str]:
    """(subject phrase, connector) in one of the paper's styles; ``a=None`` gives no attractor."""
    head = HEADS[h][int(plural)]
    conn = rng.choice(RELS if style == "rel" else CONNECTORS)
    tail = "" if a is None else f" {conn} {ATTRACTORS[a][int(attr_plural)]}"
    if style == "rel" and a is None:
        style = "base"
    if style == "base":
        s = f"The {head}{tail}"
    elif style == "front":
        s = f"{rng.choice(FRONT_PADS)} the {head}{tail}"
    elif style == "back":
        s = f"The {head}{tail} {rng.choice(BACK_PADS)}"
    elif style == "there":
        s = f"There {head}{tail}"
    elif style == "rel":
        s = f"The {head}{tail}"
    else:
        raise ValueError(f"unknown style {style!r}")
    if past:
        s = f"{PAST_PREFIX} {s[:1].lower()}{s[1:]}"
    return s, conn


def make_prompts(n: int, pairs: Sequence[tuple[int, int]], seed: int) -> list[Prompt]:
    """``n`` prompts (n even): half singular head + plural attractor, half the reverse, shuffled.

    Style uniform over :data:`STYLES`, "In the past," with probability 1/2, head/attractor
    pair uniform over ``pairs``. Deterministic in ``seed``.
    """
    if n % 2:
        raise ValueError(f"n must be even, got {n}")
    rng = random.Random(f"prompts-{seed}")
    out = []
    for i in range(n):
        plural = i >= n // 2
        h, a = rng.choice(list(pairs))
        style = rng.choice(STYLES)
        past = rng.random() < 0.5
        text, conn = _subject_phrase(rng, h, plural, a, not plural, style, past)
        out.append(Prompt(text, plural, past, style, h, a, conn))
    rng.shuffle(out)
    return out


def _verb(plural: bool, past: bool) -> str:
    return ("were" if plural else "was") if past else ("are" if plural else "is")


def _complement(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return f"in the {rng.choice(_PLACES)}"
    return rng.choice(_ADJECTIVES)


def _pronoun(h: int, plural: bool) -> str:
    if plural:
        return "they"
    lemma = HEADS[h][0]
    return "it" if lemma in _THINGS else ("she" if lemma in _FEMALE else "he")


def make_corpus(n: int, pairs: Sequence[tuple[int, int]], seed: int) -> list[str]:
    """``n`` training sentences with correct agreement (see the module docstring).

    Main subject: a head noun (either number) with, in 85% of sentences, an attractor from
    ``pairs`` of random number (opposite number half the time), in a random style; 50% past.
    Then verb, complement, and 0, 1 or 2 continuation clauses. Deterministic in ``seed``.
    """
    rng = random.Random(f"corpus-{seed}")
    pairs = list(pairs)
    out = []
    for _ in range(n):
        h, a = rng.choice(pairs)
        plural = rng.random() < 0.5
        past = rng.random() < 0.5
        attr = a if rng.random() < 0.85 else None
        attr_plural = (not plural) if rng.random() < 0.5 else plural
        subj, _ = _subject_phrase(rng, h, plural, attr, attr_plural, rng.choice(STYLES), past)
        words = [subj, _verb(plural, past), _complement(rng)]
        for _k in range(rng.choice((0, 1, 1, 2))):
            kind = rng.random()
            if kind < 0.4:  # pronoun of the main subject
                words += ["and", _pronoun(h, plural), _verb(plural, past), _complement(rng)]
            else:
                h2, a2 = rng.choice(pairs)  # attractors here too only from training pairs
                p2 = rng.random() < 0.5
                np2 = f"the {HEADS[h2][int(p2)]}"
                if rng.random() < 0.5:
                    np2 += f" {rng.choice(CONNECTORS)} {ATTRACTORS[a2][int(rng.random() < 0.5)]}"
                words += ["and" if kind < 0.75 else "because", np2, _verb(p2, past), _complement(rng)]
        out.append(" ".join(words) + ".")
    return out


@dataclass(frozen=True)
class ParsedVerb:
    """A finite verb (is/are/was/were) found by :func:`parse_verbs`.

    ``index``: word index of the verb; ``subject`` the subject word (None if none found);
    ``subject_plural`` / ``verb_plural`` the numbers; ``agrees`` whether they match
    (None when the subject is unknown).
    """

    index: int
    verb: str
    subject: str | None
    subject_plural: bool | None
    verb_plural: bool

    @property
    def agrees(self) -> bool | None:
        return None if self.subject_plural is None else self.subject_plural == self.verb_plural


_BOUNDARIES = {"and", "because", "."}


def _words(text: str) -> list[str]:
    return text.replace(".", " . ").replace(",", " , ").split()


def parse_verbs(text: str) -> list[ParsedVerb]:
    """Every finite copula (is/are/was/were) in ``text`` with its own subject.

    The grammar of the corpus: a clause starts at the beginning of the text or after
    "and" / "because" / "."; its subject is the first noun or pronoun of the lexicon in the
    clause (the head noun comes before its attractor in every style). A second verb in the
    same clause gets the same subject. Works on any text; words outside the lexicon are
    skipped, and a verb whose clause holds no lexicon noun gets ``subject=None``.
    """
    words = _words(text)
    out: list[ParsedVerb] = []
    subject: str | None = None
    for i, w in enumerate(words):
        lw = w.lower()
        if lw in _BOUNDARIES:
            subject = None
            continue
        if lw in VERBS:
            out.append(ParsedVerb(i, lw, subject, None if subject is None else noun_number(subject), VERBS[lw][0]))
            continue
        if subject is None and noun_number(lw) is not None:
            subject = lw
    return out
