"""flows/ validation: every problem names the file and the line to fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kvisa.bot.content.loader import load_flows
from kvisa.bot.paths import flows_dir
from kvisa.errors import FlowError


@pytest.fixture
def flows_copy(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(flows_dir(), target)
    return target


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` once; return the 1-based line where the change starts."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    index = text.index(old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[:index].count("\n") + 1


def line_of(path: Path, needle: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(needle) + 1


def test_shipped_flows_are_valid() -> None:
    flows = load_flows(flows_dir())
    assert [q.id for q in flows.questions][:2] == ["degree", "degree_field_stem"]
    assert {i.id for i in flows.items} >= {
        "passport",
        "visa_application_form",
        "photo",
        "talent_declaration",
        "degree_certificate",
        "commitment_letter",
        "no_criminal_record",
        "research_proof",
        "achievements_proof",
        "employment_contract",
        "business_plan",
        "research_project_materials",
        "on_site_verification",
        "residence_work_permit",
        "residence_k_visa",
        "medical_exam",
    }
    assert "nationality" not in {q.id for q in flows.questions}  # changed nothing the bot said


def test_every_fact_names_a_source_that_says_it(flows_copy: Path) -> None:
    # What the K visa offers comes from the agency's guide; the decree only adds the visa.
    flows = load_flows(flows_dir())
    by_id = {e.id: e for e in flows.faq}
    assert by_id["what_is_k_visa"].source == "decree_814"
    assert "5 years" not in by_id["what_is_k_visa"].answer
    assert by_id["what_k_visa_offers"].source == "seed_guide"
    stay = next(d for d in flows.timeline.deadlines if d.id == "stay_limit")
    assert stay.source == "seed_guide" and "per entry" in stay.title


def test_a_deadline_counted_back_must_name_a_date_answer(flows_copy: Path) -> None:
    path = flows_copy / "timeline.yaml"
    edit(path, "before: passport_expiry", "before: park")
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert caught.value.line == line_of(path, "    before: park")
    shutil.copy(flows_dir() / "timeline.yaml", path)
    edit(
        path,
        "    before: passport_expiry",
        "    after: [visa_applied]\n    before: passport_expiry",
    )
    with pytest.raises(FlowError, match="exactly one of after"):
        load_flows(flows_copy)


def test_an_estimate_calendar_is_china_or_weekdays(flows_copy: Path) -> None:
    path = flows_copy / "timeline.yaml"
    edit(path, "    calendar: weekdays", "    calendar: lunar")
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert caught.value.line == line_of(path, "    calendar: lunar")


def test_a_perk_condition_is_checked_like_any_other(flows_copy: Path) -> None:
    path = flows_copy / "parks.yaml"
    edit(path, "when: {plan: [startup]}", "when: {plan: [founder]}")
    with pytest.raises(FlowError, match="founder"):
        load_flows(flows_copy)


def test_unknown_key_names_file_and_line(flows_copy: Path) -> None:
    line = edit(
        flows_copy / "interview.yaml",
        '    why: "The academic channel needs',
        '    colour: blue\n    why: "The academic channel needs',
    )
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert (caught.value.file, caught.value.line) == ("flows/interview.yaml", line)
    assert "colour" in caught.value.problem


def test_condition_on_unknown_answer_is_a_dangling_reference(flows_copy: Path) -> None:
    path = flows_copy / "checklist.yaml"
    edit(path, "when: {plan: [employed]}", "when: {plan_b: [employed]}")
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert caught.value.file == "flows/checklist.yaml"
    assert caught.value.line == line_of(path, "    when: {plan_b: [employed]}")


def test_condition_value_that_is_not_an_option_is_refused(flows_copy: Path) -> None:
    path = flows_copy / "interview.yaml"
    edit(
        path,
        "when: {park: [zhangjiang], plan: [employed]}",
        "when: {park: [pudong], plan: [employed]}",
    )
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert caught.value.line == line_of(path, "    when: {park: [pudong], plan: [employed]}")
    assert "pudong" in caught.value.problem


def test_unknown_step_and_unknown_source_are_refused(flows_copy: Path) -> None:
    edit(flows_copy / "checklist.yaml", "step: residence_permit", "step: residence")
    with pytest.raises(FlowError, match="unknown step"):
        load_flows(flows_copy)
    shutil.copy(flows_dir() / "checklist.yaml", flows_copy / "checklist.yaml")
    edit(flows_copy / "faq.yaml", "source: decree_814", "source: rumour")
    with pytest.raises(FlowError, match="unknown source"):
        load_flows(flows_copy)


def test_a_condition_on_a_later_question_is_refused(flows_copy: Path) -> None:
    edit(
        flows_copy / "interview.yaml",
        "when: {degree: [bachelor, master, doctorate]}",
        "when: {park: [lingang]}",
    )
    with pytest.raises(FlowError, match="later fact"):
        load_flows(flows_copy)


def test_yaml_syntax_error_names_its_line(flows_copy: Path) -> None:
    path = flows_copy / "faq.yaml"
    line = edit(path, "  - id: over_35", "  - id: [over_35")
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert caught.value.file == "flows/faq.yaml" and caught.value.line is not None
    assert abs(caught.value.line - line) <= 2


def test_missing_translation_names_the_text_and_line(flows_copy: Path) -> None:
    path = flows_copy / "faq.yaml"
    edit(path, 'question: "Can I apply if I am over 35?"', 'question: "Can I apply if I am 36?"')
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy, translated=lambda msgid: "36?" not in msgid)
    assert caught.value.line == line_of(path, '    question: "Can I apply if I am 36?"')


def test_flows_check_command_reports_file_and_line(flows_copy: Path) -> None:
    path = flows_copy / "parks.yaml"
    edit(path, "  - id: lingang", "  - id: hongqiao")
    run = subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", "flows", "check"],
        capture_output=True,
        text=True,
        env={"KVISA_FLOWS_DIR": str(flows_copy), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert run.returncode == 1
    assert f"flows/parks.yaml:{line_of(path, '  - id: hongqiao')}" in run.stderr
    assert "Traceback" not in run.stderr


def test_flows_check_command_accepts_the_shipped_flows() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "kvisa.bot.cli", "flows", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def test_a_column_alias_naming_two_questions_is_refused_at_its_line(flows_copy: Path) -> None:
    path = flows_copy / "interview.yaml"
    line = edit(
        path, 'aliases: ["Time zone", "时区"]', 'aliases: ["Time zone", "时区", "出生日期"]'
    )
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert (caught.value.file, caught.value.line) == ("flows/interview.yaml", line)
    assert "birth_date" in caught.value.problem and "出生日期" in caught.value.problem


def test_a_column_alias_equal_to_another_question_id_is_refused(flows_copy: Path) -> None:
    path = flows_copy / "interview.yaml"
    line = edit(path, 'aliases: ["园区"]', 'aliases: ["园区", "Plan"]')
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert (caught.value.file, caught.value.line) == ("flows/interview.yaml", line)


def test_a_column_alias_must_be_text(flows_copy: Path) -> None:
    path = flows_copy / "interview.yaml"
    line = edit(path, 'aliases: ["园区"]', "aliases: [{park: 1}]")
    with pytest.raises(FlowError) as caught:
        load_flows(flows_copy)
    assert (caught.value.file, caught.value.line) == ("flows/interview.yaml", line)


def test_the_id_column_of_assess_cannot_be_an_alias(flows_copy: Path) -> None:
    edit(flows_copy / "interview.yaml", 'aliases: ["园区"]', 'aliases: ["园区", "ID"]')
    with pytest.raises(FlowError, match="reserved"):
        load_flows(flows_copy)
