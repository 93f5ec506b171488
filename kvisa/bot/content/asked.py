"""Questions in the applicant's own words, matched against flows/faq.yaml.

Every entry and every topic for a person is one document of its phrasings (`asked`, English and
Chinese in one index, so either language finds it in any session), ranked with BM25 (bm25s).
Text is cut into words by jieba (rjieba) for Chinese, and for English lower-cased and stemmed
(Snowball, PyStemmer). No stop-word list: a word every entry uses ("what", "吗") weighs next to
nothing in BM25 and in the coverage below, and lists made for documents drop words that matter
in short questions ("need", "how much", "limit").

BM25 ranks; it does not say how sure a match is. That comes from two figures:
- coverage: the share of the question's words, weighted by how few entries use each word, that
  the best target knows (a word no entry uses, such as "fees" or "wife", weighs the most);
- margin: how far the runner-up's score stays below the best one's.
Covered and clear of the runner-up: answer. Fully covered but close to other entries: "did you
mean …?" with up to three of them. Otherwise: say so and offer a person. The thresholds are
tuned on the phrasings alone (leave one out, see bench/faq.py), never on the held-out
evaluation set (tests/data/faq_eval.yaml).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import bm25s  # type: ignore[import-untyped]
import rjieba
import Stemmer  # type: ignore[import-not-found]

from kvisa.bot.content.model import FaqEntry, PersonTopic

# bm25s sets its own logger to DEBUG on import, so every index built would log a line through
# the process's handlers (and onto a CLI's stderr): it says what is worth a warning only.
logging.getLogger("bm25s").setLevel(logging.WARNING)

Target = FaqEntry | PersonTopic
OUT_OF_SCOPE = "out_of_scope"  # the label of a question no entry answers
Outcome = Literal["answer", "suggest", "unknown"]

SUGGESTIONS = 3


@dataclass(frozen=True)
class Bands:
    """Where answering ends and asking back begins. Tuned by leave-one-out on flows/faq.yaml's
    own phrasings and a few questions of our own that no entry answers (`python bench/faq.py
    --tune` prints the sweep); never on the held-out evaluation set."""

    answer_coverage: float = 0.4  # at least this share of the question's weight is known
    answer_margin: float = 0.65  # and the runner-up scores at most this share of the best
    # Not answered: "did you mean" only from this coverage on (every word known, but entries
    # too close to tell apart), a person below it. Above answer_coverage, as tuned: a choice
    # among entries that only half fit would rather be a person's to make.
    suggest_coverage: float = 0.8
    suggest_share: float = 0.6  # "did you mean": entries scoring this share of the best


BANDS = Bands()

_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """The words of `text` the index compares: Chinese cut by jieba, English stemmed."""
    normal = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for run in _RUNS.finditer(normal):
        chunk = run.group()
        if _CJK.match(chunk):
            out.extend(w for w in rjieba.cut_for_search(chunk) if w.strip())
        else:
            out.append(chunk)
    stem = _stemmer().stemWord
    return [w if _CJK.match(w) or w.isdigit() else stem(w) for w in out]


@dataclass(frozen=True)
class Match:
    """What to do with a typed question: answer `targets[0]`, offer `targets` (entries), or
    hand over (`unknown`: nothing known fits)."""

    outcome: Outcome
    targets: tuple[Target, ...] = ()
    coverage: float = 0.0
    margin: float = 0.0

    @property
    def best(self) -> Target | None:
        return self.targets[0] if self.targets else None


class FaqIndex:
    """The search index of one loaded content: built once, read by every turn."""

    def __init__(self, entries: Sequence[FaqEntry], topics: Sequence[PersonTopic]) -> None:
        self.targets: tuple[Target, ...] = (*entries, *topics)
        # One document per target: all its phrasings together (better than the best single
        # phrasing: a question mixes words of several ways of asking it).
        docs = [[w for p in self._phrasings(target) for w in words(p)] for target in self.targets]
        self.vocab = [frozenset(doc) for doc in docs]
        self.retriever: bm25s.BM25 | None = None
        if any(docs):
            self.retriever = bm25s.BM25()
            self.retriever.index(docs, show_progress=False)
        # How many targets use each word: a word of many weighs little, an unknown one most.
        spread = Counter(word for known in self.vocab for word in known)
        count = max(len(self.targets), 1)
        self.weights = {w: self._weight(count, n) for w, n in spread.items()}
        self.unknown_weight = self._weight(count, 0)

    @staticmethod
    def _weight(targets: int, using: int) -> float:
        return math.log(1 + (targets - using + 0.5) / (using + 0.5))

    @staticmethod
    def _phrasings(target: Target) -> Iterable[str]:
        if isinstance(target, FaqEntry):
            yield target.question
        for phrasings in target.asked.values():
            yield from phrasings

    def scores(self, text: str) -> tuple[list[str], list[float]]:
        """The question's words (each once), and each target's BM25 score."""
        query = list(dict.fromkeys(words(text)))
        best = [0.0] * len(self.targets)
        if not query or self.retriever is None:
            return query, best
        known = [w for w in query if w in self.weights]
        if not known:
            return query, best
        return query, [float(score) for score in self.retriever.get_scores(known)]

    def coverage(self, query: Sequence[str], index: int) -> float:
        total = sum(self.weights.get(w, self.unknown_weight) for w in query)
        found = sum(self.weights[w] for w in query if w in self.vocab[index])
        return found / total if total else 0.0

    def match(self, text: str, bands: Bands = BANDS) -> Match:
        return self.decide(*self.scores(text), bands)

    def decide(self, query: Sequence[str], best: Sequence[float], bands: Bands = BANDS) -> Match:
        """What scores() found means: answer, suggest, or hand over."""
        ranked = sorted(range(len(best)), key=lambda i: -best[i])
        if not ranked or best[ranked[0]] <= 0:
            return Match("unknown")
        top = best[ranked[0]]
        runner_up = best[ranked[1]] if len(ranked) > 1 else 0.0
        coverage = self.coverage(query, ranked[0])
        margin = 1 - runner_up / top
        if coverage >= bands.answer_coverage and runner_up <= bands.answer_margin * top:
            return Match("answer", (self.targets[ranked[0]],), coverage, margin)
        if coverage < bands.suggest_coverage:
            return Match("unknown", (self.targets[ranked[0]],), coverage, margin)
        close = [
            self.targets[i]
            for i in ranked[: SUGGESTIONS * 2]
            if best[i] >= bands.suggest_share * top and isinstance(self.targets[i], FaqEntry)
        ][:SUGGESTIONS]
        if not close:  # only a topic for a person comes close: that is where it goes
            return Match("unknown", (self.targets[ranked[0]],), coverage, margin)
        return Match("suggest", tuple(close), coverage, margin)

    def ranking(self, text: str) -> list[Target]:
        """Every target with a score, best first (the evaluation's top-1)."""
        _, best = self.scores(text)
        return [self.targets[i] for i in sorted(range(len(best)), key=lambda i: -best[i])]


@dataclass(frozen=True)
class Figures:
    """How a matcher did on labelled questions (`expect`: an entry id, or out_of_scope)."""

    asked: int  # questions in all
    in_scope: int
    top1: float  # share of in-scope questions whose best-ranked target is the right entry
    answered_right: float  # share of in-scope questions answered, with the right entry
    handed_over: float  # share of out-of-scope questions sent to a person, not answered
    confidently_wrong: float  # share of all questions answered with a wrong entry

    def summary(self) -> str:
        return (
            f"top-1 {self.top1:.1%} of {self.in_scope}, answered right {self.answered_right:.1%}"
            f", out of scope handed over {self.handed_over:.1%} of {self.asked - self.in_scope}"
            f", confidently wrong {self.confidently_wrong:.1%} of {self.asked}"
        )


def evaluate(cases: Iterable[tuple[FaqIndex, Mapping[str, str]]], bands: Bands = BANDS) -> Figures:
    """`cases`: (index, {"text", "expect"}) pairs. Handed over: nothing answered and no
    "did you mean" either (a topic for a person, or nothing known)."""
    asked = in_scope = top1 = right = handed = wrong = 0
    for index, case in cases:
        expect = case["expect"]
        query, scores = index.scores(case["text"])
        match = index.decide(query, scores, bands)
        best = match.best
        answered = match.outcome == "answer" and isinstance(best, FaqEntry)
        asked += 1
        if expect == OUT_OF_SCOPE:
            handed += match.outcome == "unknown" or (
                match.outcome == "answer" and isinstance(best, PersonTopic)
            )
            wrong += answered
            continue
        in_scope += 1
        top = max(range(len(scores)), key=scores.__getitem__, default=None)
        top1 += top is not None and scores[top] > 0 and index.targets[top].id == expect
        right += answered and best is not None and best.id == expect
        wrong += answered and best is not None and best.id != expect
    outside = asked - in_scope
    return Figures(
        asked,
        in_scope,
        top1 / in_scope if in_scope else 0.0,
        right / in_scope if in_scope else 0.0,
        handed / outside if outside else 1.0,
        wrong / asked if asked else 0.0,
    )
