"""The held-out evaluation (tests/data/faq_eval.yaml, written without looking at faq.yaml's
phrasings): top-1 accuracy in each language, out-of-scope questions handed over, and confident
wrong answers, against the issue's targets. The figures go to docs/benchmarks.md (bench/faq.py
prints the same)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kvisa.bot.content.asked import OUT_OF_SCOPE, Figures, evaluate
from tests.support import content

EVAL = Path(__file__).resolve().parent.parent / "data" / "faq_eval.yaml"


def questions(lang: str | None = None) -> list[dict[str, str]]:
    every = yaml.safe_load(EVAL.read_text(encoding="utf-8"))["questions"]
    return [q for q in every if lang is None or q["lang"] == lang]


def figures(lang: str | None = None) -> Figures:
    index = content()[0].faq_index
    return evaluate([(index, q) for q in questions(lang)])


def test_the_evaluation_set_is_big_enough_balanced_and_labelled_with_known_entries() -> None:
    every = questions()
    known = {e.id for e in content()[0].faq} | {OUT_OF_SCOPE}
    assert len(every) >= 150
    assert {q["expect"] for q in every} <= known
    english, chinese = questions("en"), questions("zh")
    assert abs(len(english) - len(chinese)) <= len(every) // 10
    assert len({q["text"] for q in every}) == len(every)
    phrasings = {p.casefold() for e in content()[0].faq for ps in e.asked.values() for p in ps}
    assert not [q["text"] for q in every if q["text"].casefold() in phrasings]  # held out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_top_1_accuracy_is_at_least_90_percent(lang: str) -> None:
    result = figures(lang)
    print(f"{lang}: {result.summary()}")
    assert result.top1 >= 0.90, result.summary()


def test_out_of_scope_questions_are_handed_over_and_confident_wrong_answers_are_rare() -> None:
    result = figures()
    print(result.summary())
    assert result.handed_over >= 0.95, result.summary()
    assert result.confidently_wrong <= 0.02, result.summary()
