"""courier.reminders.rules, .rules_file, .previews: the rules file, its validation, its previews."""

from __future__ import annotations

import pickle
import textwrap
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from courier.domain import ALL_TYPE_CODES, TAX_INVOICE_TYPE_CODES
from courier.messages import ON_ISSUE_PLACEHOLDERS, count_segments
from courier.reminders.previews import sample_values, template_reports
from courier.reminders.rules import REMINDER_PLACEHOLDERS, Offset, RuleSet, parse_when
from courier.reminders.rules_file import RuleFileError, RuleProblem, load_rules, parse_rules

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "data" / "reminder_rules.yaml"


def rules_yaml(body: str, defaults: str = "") -> str:
    """A version 1 file with ``body`` (indented YAML of the rules list) under ``rules:``."""
    head = "version: 1\n" + (textwrap.dedent(defaults) if defaults else "")
    return head + "rules:\n" + textwrap.indent(textwrap.dedent(body), "  ")


MINIMAL = """\
- id: chase
  name: Chase
  anchor: due_date
  steps:
    - when: 7 days after
      template: "{seller}: {number} is {days_overdue} days overdue. {link}"
"""


def problems_of(text: str) -> list[RuleProblem]:
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, "rules.yaml")
    return caught.value.problems


def only_problem(text: str) -> RuleProblem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# --------------------------------------------------------------------------- the shipped file


def test_the_shipped_file_loads_with_its_three_rules():
    rules = load_rules(SHIPPED)
    assert [r.id for r in rules.rules] == ["courtesy-before-due", "overdue-chase", "thanks-paid"]
    assert [r.id for r in rules.active] == ["courtesy-before-due", "overdue-chase"]
    assert rules.source == str(SHIPPED)

    courtesy = rules.rule("courtesy-before-due")
    assert courtesy.anchor == "due_date"
    assert courtesy.payment_statuses == {"unpaid", "partial"}
    assert [s.offset for s in courtesy.steps] == [Offset(3, "days", "before")]

    chase = rules.rule("overdue-chase")
    assert [s.id for s in chase.steps] == ["7-days-after", "14-days-after", "21-days-after"]
    assert chase.minimum_for("THB") == Decimal("1")
    assert all(s.channels == ("sms",) and set(s.templates) == {"en", "th"} for s in chase.steps)
    for step in chase.steps:
        assert "{days_overdue}" in step.templates["en"] and "{link}" in step.templates["th"]

    thanks = rules.rule("thanks-paid")
    assert not thanks.active
    assert (thanks.anchor, thanks.payment_statuses) == ("paid_date", {"paid"})
    assert thanks.stop_when_paid is False
    assert thanks.steps[0].offset == Offset(0, "instant", "after")


def test_the_shipped_texts_fit_their_segment_budget():
    reports = template_reports(load_rules(SHIPPED))
    # Every step of every rule (inactive ones too), in each of its languages.
    assert len(reports) == 10
    assert {(r.rule_id, r.step_id, r.language) for r in reports} >= {
        ("overdue-chase", "21-days-after", "th"),
        ("thanks-paid", "instantly", "en"),
    }
    for report in reports:
        assert report.segments == count_segments(report.text).segments
        assert report.characters == len(report.text)
        assert "{" not in report.text
        if report.language == "en":
            assert report.encoding == "GSM-7" and report.segments <= 2, report
        else:  # Thai: UCS-2, 70 units per SMS
            assert report.encoding == "UCS-2" and report.segments <= 3, report
    # Each step previews its own day count.
    third = next(r for r in reports if r.step_id == "21-days-after" and r.language == "en")
    assert "21 days overdue" in third.text


def test_sample_values_cover_every_placeholder_realistically():
    english, thai = sample_values("en"), sample_values("th")
    assert set(english) == set(thai) == REMINDER_PLACEHOLDERS
    assert REMINDER_PLACEHOLDERS > ON_ISSUE_PLACEHOLDERS
    assert english["link"].startswith("https://") and 60 <= len(english["link"]) <= 80
    assert english["amount"] == "12,345.00"
    assert count_segments(thai["seller"]).encoding == "UCS-2"
    assert count_segments(english["seller"]).encoding == "GSM-7"
    assert sample_values("xx") == english


# --------------------------------------------------------------------------- loading


def test_a_missing_file_is_no_rules_and_an_unreadable_one_an_error(tmp_path):
    assert load_rules(tmp_path / "absent.yaml") == RuleSet((), str(tmp_path / "absent.yaml"))
    with pytest.raises(RuleFileError, match="cannot read it"):
        load_rules(tmp_path)  # a directory
    binary = tmp_path / "rules.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(RuleFileError, match="cannot read it"):
        load_rules(binary)


def test_an_empty_file_and_an_empty_list_are_no_rules():
    assert parse_rules("# all commented out\n").rules == ()
    assert parse_rules("version: 1\nrules: []\n").rules == ()


def test_yaml_that_does_not_parse_is_one_problem_with_its_line():
    text = "version: 1\nrules:\n  - id: chase\n   name: Chase\n"
    problem = only_problem(text)
    assert (problem.rule, problem.field) == ("-", "-")
    assert "line 4" in problem.message and "column" in problem.message


def test_the_error_reads_one_line_per_problem():
    text = rules_yaml(MINIMAL.replace("      template:", "      channel: smss\n      template:"))
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, "data/reminder_rules.yaml")
    assert str(caught.value) == (
        "data/reminder_rules.yaml: rule 'chase': field 'steps[0].channel': "
        "'smss' is not one of sms, email, both"
    )
    assert caught.value.source == "data/reminder_rules.yaml"
    again = pickle.loads(pickle.dumps(caught.value))  # survives a process boundary
    assert str(again) == str(caught.value)


# --------------------------------------------------------------------------- defaults, aliases


def test_defaults_apply_where_a_rule_says_nothing():
    rule = parse_rules(rules_yaml(MINIMAL)).rule("chase")
    assert rule.active is True
    assert rule.document_types == TAX_INVOICE_TYPE_CODES | {"80"}
    assert rule.payment_statuses == {"unpaid", "partial"}
    assert rule.stop_when_paid is True
    assert rule.min_amount_due is None and rule.minimum_for("THB") == 0
    assert (rule.send_time, rule.grace) == (time(9, 0), timedelta(days=3))
    step = rule.steps[0]
    assert (step.id, step.channels) == ("7-days-after", ("sms",))


def test_file_defaults_apply_and_a_rule_overrides_them():
    defaults = """\
    defaults:
      send_time: "10:30"
      grace: 12 hours
    """
    body = MINIMAL + MINIMAL.replace("id: chase", "id: other").replace(
        "  anchor:", '  send_time: "08:00"\n  grace: 2\n  anchor:'
    )
    rules = parse_rules(rules_yaml(body, defaults))
    assert (rules.rule("chase").send_time, rules.rule("chase").grace) == (
        time(10, 30),
        timedelta(hours=12),
    )
    assert (rules.rule("other").send_time, rules.rule("other").grace) == (
        time(8, 0),
        timedelta(days=2),
    )


def test_the_id_defaults_to_the_slug_of_the_name():
    body = MINIMAL.replace("- id: chase\n  name: Chase", "- name: Overdue chase (7/14/21 days)")
    assert parse_rules(rules_yaml(body)).rules[0].id == "overdue-chase-7-14-21-days"


def test_document_type_aliases_codes_and_all():
    def types(value: str) -> frozenset[str]:
        body = MINIMAL.replace("  anchor:", f"  document_types: {value}\n  anchor:")
        return parse_rules(rules_yaml(body)).rules[0].document_types

    assert types("[tax_invoice]") == {"388", "T02", "T03", "T04"}
    assert types("[receipt, credit_note]") == {"T01", "81"}
    assert types("abbreviated_tax_invoice") == {"T05", "T06"}
    assert types("[388, 80, t01]") == {"388", "80", "T01"}  # YAML ints stringified
    assert types("all") == ALL_TYPE_CODES


def test_payment_status_aliases():
    def statuses(value: str) -> frozenset[str]:
        body = MINIMAL.replace("  anchor:", f"  payment_status: {value}\n  anchor:")
        return parse_rules(rules_yaml(body)).rules[0].payment_statuses

    assert statuses("[unpaid, partially_paid]") == {"unpaid", "partial"}
    assert statuses("partial") == {"partial"}
    assert statuses("all") == {"unpaid", "partial", "paid"}


def test_a_paid_rule_does_not_stop_when_paid_by_default():
    body = MINIMAL.replace("anchor: due_date", "anchor: paid_date\n  payment_status: [paid]")
    body = body.replace("7 days after", "instantly")
    rule = parse_rules(rules_yaml(body)).rules[0]
    assert (rule.stop_when_paid, rule.steps[0].id) == (False, "instantly")


def test_min_amount_due_as_one_number_or_per_currency():
    def rule(value: str):
        body = MINIMAL.replace("  anchor:", f"  min_amount_due: {value}\n  anchor:")
        return parse_rules(rules_yaml(body)).rules[0]

    single = rule("99.99")
    assert single.min_amount_due == Decimal("99.99")  # exact, not the float
    assert single.minimum_for("EGP") == Decimal("99.99")
    mapping = rule("{THB: 500, sar: '50.50'}")
    assert mapping.min_amount_due == {"THB": Decimal("500"), "SAR": Decimal("50.50")}
    assert mapping.minimum_for("thb") == Decimal("500")
    assert mapping.minimum_for("EGP") == 0  # no minimum for a currency not listed


def test_steps_channels_templates_and_lookups():
    body = """\
    - id: chase
      name: Chase
      anchor: issue_date
      steps:
        - id: nudge
          when: 3 hours after
          channel: both
          template: "{seller}: {number}"
        - when: 1 day after
          channel: email
          template: {en: "{number} overdue", th: "{number} เกินกำหนด"}
        - when: 2 months after
          template: "{number}"
    """
    rule = parse_rules(rules_yaml(body)).rule("chase")
    assert [s.id for s in rule.steps] == ["nudge", "1-day-after", "2-months-after"]
    assert rule.step("nudge").channels == ("sms", "email")
    assert rule.step("1-day-after").channels == ("email",)
    assert rule.step("nudge").template_for("th") == "{seller}: {number}"  # one text for all
    assert rule.step("1-day-after").template_for("th") == "{number} เกินกำหนด"
    assert rule.step("1-day-after").template_for("ar") == "{number} overdue"  # else English
    with pytest.raises(KeyError):
        rule.step("absent")
    with pytest.raises(KeyError):
        parse_rules(rules_yaml(body)).rule("absent")


def test_when_and_describe():
    assert parse_when("7 days after") == Offset(7, "days", "after")
    assert parse_when("  1 Hour   BEFORE ") == Offset(1, "hours", "before")
    assert parse_when("instantly") == parse_when("0 days after") == Offset(0, "instant", "after")
    assert parse_when("2 months before").signed == -2
    assert Offset(7, "days", "after").describe("due_date") == "7 days after the due date"
    assert Offset(3, "hours", "before").describe("due_date") == "3 hours before the due date"
    assert Offset(1, "months", "after").describe("paid_date") == "1 month after the payment date"
    assert parse_when("instantly").describe("issue_date") == "instantly at the issue date"
    with pytest.raises(ValueError):
        Offset(0, "days", "after")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("typo", "field", "suggestion"),
    [
        ("  anchr: due_date", "anchr", "anchor"),
        ("  stop_when_payed: true", "stop_when_payed", "stop_when_paid"),
        ("      chanel: sms", "steps[0].chanel", "channel"),
    ],
)
def test_an_unknown_key_is_named_with_the_closest_known_one(typo, field, suggestion):
    lines = MINIMAL.splitlines()
    if typo.strip().startswith("anchr"):
        lines[2] = typo  # replaces "anchor:": no second "anchor is required" problem
    else:
        lines.insert(-1 if typo.startswith("      ") else 3, typo)
    problem = only_problem(rules_yaml("\n".join(lines) + "\n"))
    assert (problem.rule, problem.field) == ("chase", field)
    assert problem.message == f"unknown field (did you mean '{suggestion}'?)"


def test_unknown_keys_at_the_top_and_in_defaults():
    text = "version: 1\nrulez: []\ndefaults:\n  grase: 2 days\nrules: []\n"
    problems = problems_of(text)
    assert [(p.rule, p.field) for p in problems] == [("-", "rulez"), ("-", "defaults.grase")]
    assert "did you mean 'rules'?" in problems[0].message
    assert "did you mean 'grace'?" in problems[1].message


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("7 days after", "7 days later", "steps[0].when", "is not a time"),
        ("7 days after", "-7 days after", "steps[0].when", "is not a time"),
        ("7 days after", "0 days before", "steps[0].when", "instantly"),
        ("7 days after", "70000 days after", "steps[0].when", "too far"),
        ("anchor: due_date", "anchor: due", "anchor", "'due' is not one of issue_date"),
        ("id: chase", "id: Chase!", "id", "not a valid id"),
        ("  anchor:", "  active: maybe\n  anchor:", "active", "not true or false"),
        ("  anchor:", "  document_types: [invoice]\n  anchor:", "document_types", "'invoice'"),
        ("  anchor:", "  payment_status: owed\n  anchor:", "payment_status", "'owed'"),
        ("  anchor:", "  min_amount_due: -5\n  anchor:", "min_amount_due", "0 or more"),
        ("  anchor:", "  min_amount_due: lots\n  anchor:", "min_amount_due", "not an amount"),
        ("  anchor:", "  min_amount_due: {THB: -1}\n  anchor:", "min_amount_due.THB", "0 or more"),
        ("  anchor:", "  min_amount_due: {baht: 1}\n  anchor:", "min_amount_due.baht", "currency"),
        ("  anchor:", "  grace: 30 minutes\n  anchor:", "grace", "not a duration"),
        ("  anchor:", "  grace: 0 days\n  anchor:", "grace", "at least 1 hour"),
        ("  anchor:", "  grace: 0\n  anchor:", "grace", "at least 1 hour"),
        ("  anchor:", '  send_time: "25:00"\n  anchor:', "send_time", "not a time of day"),
        ("  anchor:", "  send_time: 9:30\n  anchor:", "send_time", 'quotes, e.g. "09:30"'),
        ("      template:", "      channel: fax\n      template:", "steps[0].channel", "'fax'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_rule_and_field(old, new, field, words):
    assert old in MINIMAL
    problem = only_problem(rules_yaml(MINIMAL.replace(old, new, 1)))
    assert (problem.rule, problem.field) == ("chase" if field != "id" else "Chase!", field)
    assert words in problem.message


def test_an_unknown_placeholder_is_named():
    body = MINIMAL.replace("{link}", "{url}")
    problem = only_problem(rules_yaml(body))
    assert (problem.rule, problem.field) == ("chase", "steps[0].template")
    assert "{url}" in problem.message and "{amount_due}" in problem.message


def test_template_problems_name_the_language():
    body = MINIMAL.replace(
        'template: "{seller}: {number} is {days_overdue} days overdue. {link}"',
        'template: {en: "{number}", th: "{numbr}", fr: "x", ar: "{oops"}',
    )
    problems = problems_of(rules_yaml(body))
    assert [p.field for p in problems] == [
        "steps[0].template.th",
        "steps[0].template.fr",
        "steps[0].template.ar",
    ]
    assert "{numbr}" in problems[0].message
    assert problems[1].message == "'fr' is not one of en, th, ar"
    assert "malformed" in problems[2].message
    no_english = MINIMAL.replace(
        'template: "{seller}: {number} is {days_overdue} days overdue. {link}"',
        'template: {th: "{number}"}',
    )
    assert only_problem(rules_yaml(no_english)).field == "steps[0].template.en"


def test_paid_date_needs_payment_status_paid():
    body = MINIMAL.replace("anchor: due_date", "anchor: paid_date\n  payment_status: unpaid")
    problem = only_problem(rules_yaml(body))
    assert (problem.rule, problem.field) == ("chase", "anchor")
    assert "paid_date needs payment_status: paid" in problem.message


def test_stop_when_paid_cannot_be_true_for_a_paid_rule():
    body = MINIMAL.replace(
        "anchor: due_date", "anchor: paid_date\n  payment_status: paid\n  stop_when_paid: true"
    )
    problem = only_problem(rules_yaml(body))
    assert (problem.rule, problem.field) == ("chase", "stop_when_paid")


@pytest.mark.parametrize(
    ("second", "words"),
    [
        ("3 days after", "comes before steps[0] ('7 days after')"),
        ("7 days after", "falls at the same time as steps[0]"),
        ("1 week after", "is not a time"),
    ],
)
def test_steps_out_of_order_or_at_one_time_are_refused(second, words):
    body = MINIMAL + f'    - when: {second}\n      template: "{{number}}"\n'
    problem = only_problem(rules_yaml(body))
    assert (problem.rule, problem.field) == ("chase", "steps[1].when")
    assert words in problem.message


def test_a_month_counts_as_thirty_days_for_the_order():
    body = MINIMAL.replace("7 days after", "30 days after") + (
        '    - when: 1 month after\n      template: "{number}"\n'
    )
    assert "same time" in only_problem(rules_yaml(body)).message
    before_and_after = MINIMAL.replace("7 days after", "1 month before") + (
        '    - when: 2 hours before\n      template: "{number}"\n'
        '    - when: instantly\n      template: "{number}"\n'
    )
    rule = parse_rules(rules_yaml(before_and_after)).rules[0]
    assert [s.id for s in rule.steps] == ["1-month-before", "2-hours-before", "instantly"]


def test_duplicate_rule_and_step_ids_are_refused():
    body = MINIMAL + MINIMAL.replace("7 days after", "8 days after")
    problem = only_problem(rules_yaml(body))
    assert (problem.rule, problem.field) == ("chase", "id")
    assert "already the id of rules[0]" in problem.message

    steps = MINIMAL.replace("    - when: 7 days after", "    - id: first\n      when: 7 days after")
    steps += '    - id: first\n      when: 8 days after\n      template: "{number}"\n'
    problem = only_problem(rules_yaml(steps))
    assert (problem.rule, problem.field) == ("chase", "steps[1].id")


def test_required_fields_and_empty_steps():
    problems = problems_of(rules_yaml("- steps: []\n"))
    assert [(p.rule, p.field) for p in problems] == [
        ("rules[0]", "name"),
        ("rules[0]", "anchor"),
        ("rules[0]", "steps"),
    ]
    named = problems_of(rules_yaml("- name: Nameless\n  anchor: due_date\n"))
    assert [(p.rule, p.field) for p in named] == [("Nameless", "steps")]


@pytest.mark.parametrize("version", ["version: 2\n", "version: '1'\n", ""])
def test_only_version_1_is_read(version):
    problem = only_problem(version + "rules: []\n")
    assert (problem.rule, problem.field) == ("-", "version")


def test_several_problems_are_reported_together():
    body = """\
    - id: chase
      name: Chase
      anchr: due_date
      steps:
        - when: 7 days after
          channel: smss
          template: "{number}"
        - when: 3 days after
          template: "{nmber}"
    - name: Thanks
      anchor: paid_date
      steps:
        - when: instantly
          template: "{number}"
    """
    problems = problems_of(rules_yaml(body, "defaults:\n  send_time: noon\n"))
    assert [(p.rule, p.field) for p in problems] == [
        ("-", "defaults.send_time"),
        ("chase", "anchr"),
        ("chase", "steps[0].channel"),
        ("chase", "steps[1].when"),
        ("chase", "steps[1].template"),
        ("Thanks", "anchor"),
    ]
    with pytest.raises(RuleFileError) as caught:
        parse_rules(rules_yaml(body, "defaults:\n  send_time: noon\n"), "r.yaml")
    assert len(str(caught.value).splitlines()) == 6
