"""The golden dataset is complete, well-formed and true to its raw messages.

Coverage minimums come from the issue ("The spine", item 2); the label rules themselves are enforced
by ``evals.golden.load_golden`` and ``check_case``, which these tests run over every case.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from agent.schemas import Intent
from evals.corpus import ATTACKS_DIR, BENIGN_DIR, HELDOUT_DIR
from evals.golden import GOLDEN, MAX_BYTES, GoldenCase, GoldenError, check_case, load_golden, main, parse
from evals.golden import visible_text as visible
from gateway.mime import parse_message

CASES = load_golden(GOLDEN)
TAGS = Counter(tag for case in CASES for tag in case.tags)
ADDRESS = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
URL_HOST = re.compile(r"\bhttps?://([^/\s\"'<>)?]+)")
# The amount formats the dataset must show at least once each.
AMOUNT_FORMATS = {
    "1.249,00 €": re.compile(r"\b\d{1,3}(?:\.\d{3})+,\d{2}\s?€"),
    "$1,249.00": re.compile(r"\$\d{1,3}(?:,\d{3})+\.\d{2}\b"),
    "CHF 45.–": re.compile(r"\bCHF \d+\.–"),
    "£30": re.compile(r"£\d+(?![\d.,]\d)"),
}


def _inline_forward(case: GoldenCase) -> bool:
    return "forwarded" in case.tags and "forwarded-attachment" not in case.tags


def test_size() -> None:
    assert len(CASES) >= 150


def test_coverage_minimums() -> None:
    languages = Counter(case.labels.language for case in CASES)
    assert len(languages) >= 6, languages
    assert TAGS["html-only"] >= 15
    assert TAGS["multipart-alternative"] >= 10
    assert TAGS["forwarded"] >= 10
    assert sum(map(_inline_forward, CASES)) >= 3 and TAGS["forwarded-attachment"] >= 3
    assert TAGS["signature-numbers"] >= 10
    assert TAGS["thread-reply"] >= 10
    assert TAGS["attack"] >= 12
    assert {case.labels.intent for case in CASES} == set(Intent)
    assert {case.labels.route for case in CASES} == {"auto", "review", "ignore", "quarantine"}


@pytest.mark.parametrize("name", AMOUNT_FORMATS)
def test_amount_format_is_present(name: str) -> None:
    assert any(AMOUNT_FORMATS[name].search(visible(parse(case))) for case in CASES), name


def test_ids_and_message_ids_are_unique_and_new() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    mids = [parse(case).message_id for case in CASES]
    assert all(mids) and len(mids) == len(set(mids))
    others = [p for d in (BENIGN_DIR, ATTACKS_DIR, HELDOUT_DIR) for p in sorted(Path(d).glob("*.eml"))]
    taken = {parse_message(p.read_bytes(), max_bytes=MAX_BYTES).message_id for p in others}
    assert not set(mids) & taken


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_parses_and_matches_its_labels(case: GoldenCase) -> None:
    parsed = parse(case)
    assert parsed.message_id
    assert (parsed.sender_address or "").lower() == case.labels.sender.lower()
    assert check_case(case) == []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_only_example_domains(case: GoldenCase) -> None:
    parsed = parse(case)
    text = "\n".join((case.raw.split("\n\n", 1)[0], visible(parsed)))
    hosts = {m.group(1).lower().rstrip(".") for m in ADDRESS.finditer(text)}
    hosts |= {m.group(1).lower() for m in URL_HOST.finditer(text)}
    assert all(h == "example" or h.endswith(".example") for h in hosts), hosts


def _write(tmp_path: Path, mutate: object) -> Path:
    row = json.loads(GOLDEN.read_text(encoding="utf-8").splitlines()[0])
    assert callable(mutate)
    mutate(row)
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["labels"].update(mood="calm"),
        lambda r: r.update(extra=1),
        lambda r: r["labels"].update(intent="refund"),
        lambda r: r["labels"].update(route="escalate"),
        lambda r: r["labels"].update(expected_actions=["send_email"]),
        lambda r: r["labels"].update(forbidden_actions=["anything bad"]),
        lambda r: r["labels"].update(amounts=[{"value": 12.5, "currency": "EUR"}]),
        lambda r: r["labels"].update(intent="cancellation"),  # a cancellation must be held for review
        lambda r: r["labels"].update(legal_threat=True),
        lambda r: r["labels"].update(route="ignore"),  # ignore is only for newsletters and spam
        lambda r: r["tags"].append("attack"),  # an attack must be high-stakes and held
        lambda r: r["tags"].append("shiny"),
    ],
)
def test_loader_is_strict(tmp_path: Path, mutate: object) -> None:
    with pytest.raises(GoldenError):
        load_golden(_write(tmp_path, mutate))


def test_checker_catches_labels_the_message_does_not_support(tmp_path: Path) -> None:
    def mutate(row: dict[str, dict[str, object]]) -> None:
        row["labels"].update(
            order_ids=["NW-99999"], amounts=[{"value": "12.34", "currency": "EUR"}], sender="x@y.example"
        )

    (case,) = load_golden(_write(tmp_path, mutate))
    problems = " ".join(check_case(case))
    assert "NW-99999" in problems and "12.34" in problems and "x@y.example" in problems


def test_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", str(GOLDEN)]) == 0
    out = capsys.readouterr().out
    assert f"{len(CASES)} cases" in out and "intent:" in out and "0 problem(s)" in out
