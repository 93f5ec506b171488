"""The matcher as a parser of outside input: any text (any script, control characters, huge
or empty) gives one of the three outcomes without raising, the same each time; a phrasing of
flows/faq.yaml finds its own entry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvisa.bot.content.asked import FaqIndex, words
from kvisa.bot.content.model import FaqEntry, PersonTopic
from tests.support import content

INDEX = content()[0].faq_index
TEXT = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Z", "Cc")), max_size=300
) | st.sampled_from(["", " ", "?", "？？", "K", "签证", "a" * 5000, "\x00\x1b[2J", "🙂" * 40])


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_any_text_gets_an_outcome_without_an_error(text: str) -> None:
    match = INDEX.match(text)
    assert match.outcome in ("answer", "suggest", "unknown")
    assert 0.0 <= match.coverage <= 1.0 + 1e-9
    if match.outcome == "answer":
        assert len(match.targets) == 1
    if match.outcome == "suggest":
        assert 1 <= len(match.targets) <= 3
        assert all(isinstance(t, FaqEntry) for t in match.targets)
    assert INDEX.match(text) == match  # deterministic
    assert all(w and w == w.strip() for w in words(text))


def test_the_phrasings_of_faq_yaml_find_their_own_entries() -> None:
    """Nearly every phrasing ranks its own entry or topic first (all phrasings of an entry are
    one document, so a short one may lose to a longer entry that shares its words)."""
    flows = content()[0]
    targets = (*flows.faq, *flows.to_a_person)
    cases = [(t.id, p) for t in targets for ps in t.asked.values() for p in ps]
    found = sum(INDEX.ranking(phrasing)[0].id == target for target, phrasing in cases)
    assert len(cases) >= 500 and found / len(cases) >= 0.95


def test_an_empty_faq_answers_nothing() -> None:
    empty = FaqIndex([], [])
    assert empty.match("what is the k visa").outcome == "unknown"
    topic = PersonTopic("fees", "fees", {"en": ("how much does it cost",), "zh": ("多少钱",)})
    only_topic = FaqIndex([], [topic])
    assert only_topic.match("how much does it cost?").best == topic


def test_english_is_stemmed_and_chinese_is_cut_into_words() -> None:
    assert words("Applying for permits") == ["appli", "for", "permit"]
    assert words("怎么申请工作许可？") == ["怎么", "申请", "工作", "许可"]
