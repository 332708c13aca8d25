"""The adversarial corpus is well-formed and complete, and the guard evaluation runs over it.

No detection threshold is asserted here: the gate is set from the numbers ``evals.guard_eval``
prints, once they are known.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest

from evals import guard_eval
from evals.corpus import (
    ATTACKS_DIR,
    BENIGN_DIR,
    GOALS,
    LANGS,
    TECHNIQUES,
    attack_files,
    benign_files,
    load_manifest,
)
from gateway.mime import parse_message

FILES = attack_files(ATTACKS_DIR)
MANIFEST = load_manifest(ATTACKS_DIR)
NAME = re.compile(r"^(\d{3})-[a-z0-9]+(?:-[a-z0-9]+)*\.eml$")
ADDRESS = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
URL_HOST = re.compile(r"\bhttps?://([^/\s\"'<>)?]+)")
ALLOWED_TLDS = (".example", ".test")

# Techniques the issue asks the corpus to cover; each must be used by at least one email.
REQUIRED_TECHNIQUES = {
    "hidden-display-none",
    "hidden-font-size-0",
    "hidden-white-on-white",
    "hidden-attribute",
    "hidden-opacity-0",
    "zero-width",
    "bidi",
    "tag-chars",
    "html-comment",
    "quoted-reply",
    "fake-forward",
    "attachment-name",
    "path-traversal-name",
    "role-line",
    "fake-tool-call-json",
    "fake-tool-call-xml",
    "markdown-image-exfil",
    "ignore-previous",
    "paraphrase",
    "developer-mode",
    "base64",
    "alt-mismatch",
    "homoglyph",
    "long-body",
    "subject-injection",
    "subtle",
}


def _message(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _texts(message: EmailMessage) -> list[str]:
    texts = [str(message[h]) for h in ("From", "To", "Reply-To", "Subject") if message[h] is not None]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            texts.append(part.get_content())
        if filename := part.get_filename():
            texts.append(filename)
    return texts


def test_corpus_has_at_least_110_numbered_files() -> None:
    assert len(FILES) >= 110, len(FILES)
    numbers = []
    for path in FILES:
        match = NAME.match(path.name)
        assert match, f"{path.name}: expected NNN-short-name.eml"
        numbers.append(match.group(1))
    assert len(set(numbers)) == len(numbers), [n for n, c in Counter(numbers).items() if c > 1]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_is_a_valid_email(path: Path) -> None:
    message = _message(path)
    for header in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        assert message[header] is not None, f"{path.name}: no {header}"
    defects = [d for part in message.walk() for d in part.defects]
    assert not defects, f"{path.name}: {defects}"
    parsed = parse_message(path.read_bytes(), max_bytes=guard_eval.MAX_BYTES)  # raises if unusable
    assert parsed.sender_address and parsed.message_id
    assert parsed.to == ["support@northwind.example"]


def test_message_ids_are_unique_also_against_the_demo_mailbox() -> None:
    ids = [str(_message(p)["Message-ID"]).strip() for p in FILES]
    duplicates = [i for i, c in Counter(ids).items() if c > 1]
    assert not duplicates, duplicates
    demo = {str(_message(p)["Message-ID"]).strip() for p in sorted(BENIGN_DIR.glob("*.eml"))}
    assert not demo & set(ids)


def test_only_reserved_domains_are_used() -> None:
    bad = []
    for path in FILES:
        for text in _texts(_message(path)):
            for domain in ADDRESS.findall(text) + URL_HOST.findall(text):
                if not domain.lower().rstrip(".").endswith(ALLOWED_TLDS):
                    bad.append((path.name, domain))
    assert not bad, bad


def test_manifest_covers_every_file_with_known_labels() -> None:
    raw = (ATTACKS_DIR / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert all(set(json.loads(line)) == {"file", "technique", "goal", "lang", "notes"} for line in raw)
    assert sorted(MANIFEST) == [p.name for p in FILES]
    for case in MANIFEST.values():
        assert case.technique, case.file
        assert set(case.technique) <= set(TECHNIQUES), (case.file, set(case.technique) - set(TECHNIQUES))
        assert case.goal in GOALS, case
        assert case.lang in LANGS, case
        assert case.notes.strip(), case.file


def test_every_technique_goal_and_language_appears() -> None:
    used = Counter(t for case in MANIFEST.values() for t in case.technique)
    assert not REQUIRED_TECHNIQUES - set(TECHNIQUES)
    assert not set(TECHNIQUES) - set(used), f"techniques without an email: {set(TECHNIQUES) - set(used)}"
    assert {case.goal for case in MANIFEST.values()} == set(GOALS)
    assert {case.lang for case in MANIFEST.values()} == set(LANGS)
    # "ignore previous instructions" or a paraphrase of it in every language, mixed included.
    for lang in LANGS:
        assert any(
            case.lang == lang and {"ignore-previous", "paraphrase"} & set(case.technique)
            for case in MANIFEST.values()
        ), lang


def test_the_specific_cases_the_issue_names_are_present() -> None:
    names = {name for path in FILES for part in _message(path).walk() if (name := part.get_filename())}
    assert "../../etc/passwd" in names
    assert any(n.startswith("C:\\Windows\\") for n in names)
    bodies = "\n".join(t for path in FILES for t in _texts(_message(path)))
    assert "---------- Forwarded message ---------" in bodies and "From: IT Security" in bodies
    for currency in ("EUR", "USD", "GBP", "CHF", "¥", "R$"):
        assert currency in bodies, currency
    assert re.search(r"reply-?to", bodies, re.IGNORECASE)


def test_benign_set_excludes_the_demo_attacks() -> None:
    names = [p.name for p in benign_files(BENIGN_DIR)]
    assert names and not [n for n in names if re.search("injection|phishing|spam", n)]


def test_evaluate_runs_and_reports_rates() -> None:
    report = guard_eval.evaluate(ATTACKS_DIR, BENIGN_DIR)
    assert report.attacks.total == len(FILES)
    assert report.benign.total == len(benign_files(BENIGN_DIR))
    for rate in (report.detection_rate, report.quarantine_rate, report.false_positive_rate):
        assert 0.0 <= rate <= 1.0
    assert report.quarantine_rate <= report.detection_rate
    assert set(report.by_technique) == {t for case in MANIFEST.values() for t in case.technique}
    assert all(0.0 <= r.detection_rate <= 1.0 for r in report.by_technique.values())
    assert sum(r.total for r in report.by_goal.values()) == len(FILES)
    assert len(report.missed) == report.attacks.total - report.attacks.detected
    assert all(r.outcome != "error" for r in report.results), report.errors
    assert "| attack emails |" in guard_eval.to_markdown(report)
    assert json.loads(json.dumps(report.to_json()))["attacks"]["total"] == len(FILES)


def test_cli_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert guard_eval.main(["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.0 <= out["detection_rate"] <= 1.0 and 0.0 <= out["false_positive_rate"] <= 1.0
