"""The diff of two versions names each changed fact once, with its old and new value."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kvisa.bot.content.diff import diff, report
from kvisa.bot.content.versions import Packed, pack
from kvisa.bot.paths import flows_dir
from tests.publishing.conftest import CATALOGS

SHIPPED, _ = pack(flows_dir(), CATALOGS)
DOCS = {name: yaml.safe_load(text) for name, text in SHIPPED.files.items()}
# (file, list, kind, fields that may be edited)
TARGETS = [
    ("checklist", "items", "Checklist item", ["title", "detail"]),
    ("faq", "entries", "FAQ entry", ["question", "answer"]),
    ("timeline", "deadlines", "Deadline", ["title"]),
    ("policy", "channels", "Eligibility channel", ["summary"]),
]
texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)


def with_docs(docs: dict[str, Any]) -> Packed:
    files = {name: yaml.safe_dump(doc, allow_unicode=True) for name, doc in docs.items()}
    return Packed(files, SHIPPED.zh)


@settings(max_examples=30, deadline=None)
@given(target=st.sampled_from(TARGETS), index=st.integers(0, 100), value=texts, data=st.data())
def test_an_edited_text_is_one_change_with_its_old_and_new_value(
    target: tuple[str, str, str, list[str]], index: int, value: str, data: st.DataObject
) -> None:
    file, key, kind, editable = target
    docs = yaml.safe_load(yaml.safe_dump(DOCS))
    entry = docs[file][key][index % len(docs[file][key])]
    field = data.draw(st.sampled_from(editable))
    old_value = entry[field]
    entry[field] = value
    before, after = with_docs(DOCS), with_docs(docs)

    changes = diff(before, after)

    if value == old_value:
        assert changes == []
        return
    assert [(c.kind, c.ident, c.field, c.old, c.new) for c in changes] == [
        (kind, entry["id"], field, old_value, value)
    ]
    en = report(CATALOGS["en"], changes, before, after)
    assert len(en) == 1 and value in en[0]


@settings(max_examples=30, deadline=None)
@given(index=st.integers(0, 100), working_days=st.lists(st.integers(0, 30), min_size=2, max_size=2))
def test_a_changed_processing_time_reads_as_its_old_and_new_window(
    index: int, working_days: list[int]
) -> None:
    docs = yaml.safe_load(yaml.safe_dump(DOCS))
    estimate = docs["timeline"]["estimates"][index % len(docs["timeline"]["estimates"])]
    old = estimate["working_days"]
    estimate["working_days"] = sorted(working_days)

    changes = diff(with_docs(DOCS), with_docs(docs))

    if sorted(working_days) == old:
        assert changes == []
    else:
        assert len(changes) == 1 and changes[0].field == "working_days"
        line = report(CATALOGS["zh"], changes, with_docs(DOCS), with_docs(docs))[0]
        low, high = sorted(working_days)
        assert f"{old[0]}–{old[1]} → {low}–{high}" in line


@settings(max_examples=20, deadline=None)
@given(index=st.integers(0, 100))
def test_a_removed_item_is_one_removal_and_putting_it_back_one_addition(index: int) -> None:
    docs = yaml.safe_load(yaml.safe_dump(DOCS))
    removed = docs["checklist"]["items"].pop(index % len(docs["checklist"]["items"]))
    full, short = with_docs(DOCS), with_docs(docs)

    gone, back = diff(full, short), diff(short, full)

    assert [(c.ident, c.what) for c in gone] == [(removed["id"], "removed")]
    assert [(c.ident, c.what) for c in back] == [(removed["id"], "added")]


def test_the_same_content_has_no_change_and_says_so() -> None:
    assert diff(SHIPPED, SHIPPED) == []
    assert report(CATALOGS["zh"], [], SHIPPED, SHIPPED) == [CATALOGS["zh"]("No change.")]
