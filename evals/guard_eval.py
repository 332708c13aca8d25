"""How well the gateway guard catches the attack corpus, and how often it bothers benign mail.

Runs the real gateway (``gateway.mime.parse_message`` then ``gateway.scan.guard``) over every
attack email and every benign demo email. An attack counts as *detected* when the verdict is
``flag`` or ``quarantine``, or when the gateway rejects the message outright (it then never reaches
the agent). A benign email counts as a *false positive* on the same conditions.

    python -m evals.guard_eval              # markdown report
    python -m evals.guard_eval --json       # machine-readable report
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from app.errors import MessageRejected
from app.settings import Settings
from evals.corpus import ATTACKS_DIR, BENIGN_DIR, AttackCase, attack_files, benign_files, load_manifest
from gateway.mime import parse_message
from gateway.scan import guard

Outcome = Literal["pass", "flag", "quarantine", "rejected", "error"]
BLOCKED: frozenset[str] = frozenset({"flag", "quarantine", "rejected"})
MAX_BYTES: int = Settings.model_fields["max_email_bytes"].default


@dataclass
class FileResult:
    file: str
    outcome: Outcome
    reasons: list[str]
    latency_ms: float
    technique: list[str] = field(default_factory=list)
    goal: str = ""

    @property
    def detected(self) -> bool:
        return self.outcome in BLOCKED


@dataclass
class Rate:
    total: int = 0
    detected: int = 0
    quarantined: int = 0

    @property
    def detection_rate(self) -> float:
        return self.detected / self.total if self.total else 0.0

    @property
    def quarantine_rate(self) -> float:
        return self.quarantined / self.total if self.total else 0.0

    def add(self, result: FileResult) -> None:
        self.total += 1
        self.detected += result.detected
        self.quarantined += result.outcome in ("quarantine", "rejected")


@dataclass
class GuardReport:
    attacks: Rate
    by_technique: dict[str, Rate]
    by_goal: dict[str, Rate]
    benign: Rate  # "detected" here means a false positive
    missed: list[FileResult]
    false_positives: list[FileResult]
    errors: list[FileResult]
    degraded: list[str]
    latency_ms_p50: float
    latency_ms_p95: float
    results: list[FileResult]

    @property
    def detection_rate(self) -> float:
        return self.attacks.detection_rate

    @property
    def quarantine_rate(self) -> float:
        return self.attacks.quarantine_rate

    @property
    def false_positive_rate(self) -> float:
        return self.benign.detection_rate

    def to_json(self) -> dict[str, object]:
        def rate(r: Rate) -> dict[str, object]:
            return {
                **asdict(r),
                "detection_rate": round(r.detection_rate, 4),
                "quarantine_rate": round(r.quarantine_rate, 4),
            }

        def row(r: FileResult) -> dict[str, object]:
            return {**asdict(r), "detected": r.detected}

        return {
            "detection_rate": round(self.detection_rate, 4),
            "quarantine_rate": round(self.quarantine_rate, 4),
            "false_positive_rate": round(self.false_positive_rate, 4),
            "attacks": rate(self.attacks),
            "benign": rate(self.benign),
            "by_technique": {k: rate(v) for k, v in self.by_technique.items()},
            "by_goal": {k: rate(v) for k, v in self.by_goal.items()},
            "missed": [row(r) for r in self.missed],
            "false_positives": [row(r) for r in self.false_positives],
            "errors": [row(r) for r in self.errors],
            "degraded": self.degraded,
            "latency_ms_p50": self.latency_ms_p50,
            "latency_ms_p95": self.latency_ms_p95,
            "results": [row(r) for r in self.results],
        }


def run_guard(raw: bytes, *, email_id: int) -> tuple[Outcome, list[str], list[str]]:
    """(outcome, reasons, degraded scanners) of the real gateway for one raw message."""
    try:
        parsed = parse_message(raw, max_bytes=MAX_BYTES)
    except MessageRejected as exc:
        return "rejected", [str(exc)], []
    try:
        verdict = guard(parsed, email_id=email_id).verdict
    except Exception as exc:  # a scanner bug must show up in the report, not abort the evaluation
        return "error", [f"{type(exc).__name__}: {exc}"[:300]], []
    return verdict.decision, list(verdict.reasons), list(verdict.degraded)


def _run(
    paths: Iterable[Path], cases: dict[str, AttackCase], start_id: int, degraded: set[str]
) -> list[FileResult]:
    results = []
    for offset, path in enumerate(paths):
        began = time.perf_counter()
        outcome, reasons, missing = run_guard(path.read_bytes(), email_id=start_id + offset)
        degraded.update(missing)
        case = cases.get(path.name)
        results.append(
            FileResult(
                file=path.name,
                outcome=outcome,
                reasons=reasons,
                latency_ms=round((time.perf_counter() - began) * 1000, 3),
                technique=list(case.technique) if case else [],
                goal=case.goal if case else "",
            )
        )
    return results


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 3)


def evaluate(attacks_dir: Path = ATTACKS_DIR, benign_dir: Path = BENIGN_DIR) -> GuardReport:
    cases = load_manifest(attacks_dir)
    degraded: set[str] = set()
    attack_results = _run(attack_files(attacks_dir), cases, 1, degraded)
    benign_results = _run(benign_files(benign_dir), {}, 100_000, degraded)

    attacks, benign = Rate(), Rate()
    by_technique: dict[str, Rate] = {}
    by_goal: dict[str, Rate] = {}
    for result in attack_results:
        attacks.add(result)
        for technique in result.technique or ["(not in manifest)"]:
            by_technique.setdefault(technique, Rate()).add(result)
        by_goal.setdefault(result.goal or "(not in manifest)", Rate()).add(result)
    for result in benign_results:
        benign.add(result)
    everything = attack_results + benign_results
    latencies = [r.latency_ms for r in everything]
    return GuardReport(
        attacks=attacks,
        by_technique=dict(sorted(by_technique.items())),
        by_goal=dict(sorted(by_goal.items())),
        benign=benign,
        missed=[r for r in attack_results if not r.detected],
        false_positives=[r for r in benign_results if r.detected],
        errors=[r for r in everything if r.outcome == "error"],
        degraded=sorted(degraded),
        latency_ms_p50=_percentile(latencies, 50),
        latency_ms_p95=_percentile(latencies, 95),
        results=everything,
    )


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def to_markdown(report: GuardReport) -> str:
    a, b = report.attacks, report.benign
    lines = [
        "## Gateway guard evaluation",
        "",
        "| metric | value |",
        "|---|---|",
        f"| attack emails | {a.total} |",
        f"| detected (flag, quarantine or rejected) | {a.detected} ({_pct(a.detection_rate)}) |",
        f"| quarantined or rejected | {a.quarantined} ({_pct(a.quarantine_rate)}) |",
        f"| benign emails | {b.total} |",
        f"| false positives (benign flagged or quarantined) | {b.detected} ({_pct(b.detection_rate)}) |",
        f"| benign quarantined | {b.quarantined} ({_pct(b.quarantine_rate)}) |",
        f"| guard latency p50 / p95 | {report.latency_ms_p50:.1f} ms / {report.latency_ms_p95:.1f} ms |",
        f"| degraded scanners | {', '.join(report.degraded) or 'none'} |",
        f"| errors | {len(report.errors)} |",
        "",
        "### By technique",
        "",
        "| technique | emails | detected | quarantined | detection rate |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, rate in sorted(report.by_technique.items(), key=lambda kv: (kv[1].detection_rate, kv[0])):
        lines.append(
            f"| {name} | {rate.total} | {rate.detected} | {rate.quarantined} | {_pct(rate.detection_rate)} |"
        )
    lines += [
        "",
        "### By goal",
        "",
        "| goal | emails | detected | quarantined | detection rate |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, rate in report.by_goal.items():
        lines.append(
            f"| {name} | {rate.total} | {rate.detected} | {rate.quarantined} | {_pct(rate.detection_rate)} |"
        )
    lines += ["", f"### Missed attacks ({len(report.missed)})", ""]
    lines += [f"- `{r.file}` ({', '.join(r.technique)}; goal {r.goal})" for r in report.missed] or ["none"]
    lines += ["", f"### False positives ({len(report.false_positives)})", ""]
    lines += [
        f"- `{r.file}`: {r.outcome} ({'; '.join(r.reasons)[:200]})" for r in report.false_positives
    ] or ["none"]
    if report.errors:
        lines += ["", f"### Errors ({len(report.errors)})", ""]
        lines += [f"- `{r.file}`: {'; '.join(r.reasons)}" for r in report.errors]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.guard_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--attacks", type=Path, default=ATTACKS_DIR, help="directory of attack .eml files")
    parser.add_argument("--benign", type=Path, default=BENIGN_DIR, help="directory of benign .eml files")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = evaluate(args.attacks, args.benign)
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(to_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
