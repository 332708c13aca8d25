"""Gateway guard latency by body size, per scanner, and the semantic detector's separation.

    python -m bench.guard            # both, as markdown
    python -m bench.guard --json

``measure()`` builds plain-text emails of ~1 KB, 10 KB and 100 KB from the benign demo emails'
text (each email a fresh shuffle, so no two are alike) and times ``scan_raw`` (MIME parse + every
configured scanner) in-process with the default settings: the offline scanners, no model
directories, the semantic detector in-process (numpy). The embedding cache is cleared before each
email, so every figure is a cold one. The pipeline is warmed first (model loading is per process,
not per email). ``separation()`` reports the similarity of held-out attacks, benign sentences and
benign demo-email windows to the attack corpus, against the configured thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections import defaultdict
from typing import Any

import numpy as np

from app.settings import get_settings
from gateway.guards.corpus import BENIGN, HELDOUT, load_sentences
from gateway.guards.pipeline import GuardPipeline
from gateway.guards.windows import split_sentences
from gateway.mime import parse_message
from gateway.scan import scan_raw
from tests.support.stack import DEMO_MAILBOX

SIZES = (1024, 10 * 1024, 100 * 1024)
ROUNDS = {1024: 60, 10 * 1024: 60, 100 * 1024: 20}
MAX_BYTES = 25 * 1024 * 1024
_ATTACK_NAMES = ("injection", "hidden", "spam")


def _benign_texts() -> list[str]:
    texts = []
    for path in sorted(DEMO_MAILBOX.glob("*.eml")):
        if not any(word in path.name for word in _ATTACK_NAMES):
            parsed = parse_message(path.read_bytes(), max_bytes=MAX_BYTES)
            texts.append(parsed.text)
    return [t for t in texts if t.strip()]


def synthetic_email(size: int, rng: random.Random, texts: list[str]) -> bytes:
    paragraphs: list[str] = []
    while sum(len(p) + 2 for p in paragraphs) < size:
        paragraphs.append(rng.choice(texts))
    body = "\n\n".join(paragraphs)[:size]
    head = (
        "From: Customer <customer@example.test>\r\nTo: support@northwind.example\r\n"
        f"Subject: Order question {rng.randrange(10**6)}\r\n"
        f"Message-ID: <bench-{rng.randrange(10**9)}@example.test>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return (head + body.replace("\n", "\r\n")).encode()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(pipeline: GuardPipeline | None = None, *, seed: int = 7) -> list[dict[str, Any]]:
    """One row per body size: p50/p95 ms and emails/s for the whole scan, and p50/p95 per scanner."""
    pipeline = (pipeline or GuardPipeline.from_settings(get_settings())).warm()
    rng = random.Random(seed)
    texts = _benign_texts()
    rows = []
    for size in SIZES:
        totals: list[float] = []
        cpu: list[float] = []
        per_scanner: dict[str, list[float]] = defaultdict(list)
        decisions: dict[str, int] = defaultdict(int)
        for _ in range(ROUNDS[size]):
            raw = synthetic_email(size, rng, texts)
            if pipeline.semantic is not None:
                pipeline.semantic.embedder.clear_cache()
            start, start_cpu = time.perf_counter(), time.process_time()
            _, guarded = scan_raw(raw, email_id=1, max_bytes=MAX_BYTES, pipeline=pipeline)
            totals.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
            decisions[guarded.verdict.decision] += 1
            for result in guarded.verdict.scanners:
                per_scanner[result.name].append(result.latency_ms)
        rows.append(
            {
                "size_bytes": size,
                "emails": len(totals),
                "p50_ms": round(statistics.median(totals), 2),
                "p95_ms": round(_percentile(totals, 0.95), 2),
                "emails_per_s": round(len(totals) / (sum(totals) / 1000), 1),
                "cpu_p50_ms": round(statistics.median(cpu), 2),
                "cpu_p95_ms": round(_percentile(cpu, 0.95), 2),
                "load_average": round(os.getloadavg()[0], 2),
                "decisions": dict(decisions),
                "scanners": {
                    name: {"p50_ms": round(statistics.median(v), 3), "p95_ms": round(_percentile(v, 0.95), 3)}
                    for name, v in per_scanner.items()
                },
            }
        )
    return rows


def separation(pipeline: GuardPipeline | None = None) -> dict[str, Any]:
    """Max cosine similarity to the attack corpus of: corpus sentences (leave-one-out), held-out
    attacks, benign sentences, and every sentence window of the benign demo emails."""
    pipeline = (pipeline or GuardPipeline.from_settings(get_settings())).warm()
    if pipeline.semantic is None:
        raise RuntimeError("the semantic detector is not loaded: " + "; ".join(pipeline.degraded))
    embedder = pipeline.semantic.embedder
    corpus = embedder.encode([s.text for s in load_sentences()])
    sets = {
        "corpus (leave-one-out)": [s.text for s in load_sentences()],
        "held-out attacks": [s.text for s in load_sentences(HELDOUT)],
        "benign sentences": [s.text for s in load_sentences(BENIGN)],
        "benign demo windows": [w for t in _benign_texts() for w in split_sentences(t)],
    }
    settings = pipeline.settings
    out: dict[str, Any] = {
        "flag_threshold": settings.semantic_flag_threshold,
        "quarantine_threshold": settings.semantic_quarantine_threshold,
        "sets": {},
    }
    for name, texts in sets.items():
        sims = embedder.encode(texts) @ corpus.T
        if name.startswith("corpus"):
            np.fill_diagonal(sims, -1.0)
        best = sims.max(axis=1)
        out["sets"][name] = {
            "n": len(texts),
            "min": round(float(best.min()), 3),
            "median": round(float(np.median(best)), 3),
            "p90": round(float(np.percentile(best, 90)), 3),
            "max": round(float(best.max()), 3),
            "over_flag": int((best >= settings.semantic_flag_threshold).sum()),
            "over_quarantine": int((best >= settings.semantic_quarantine_threshold).sum()),
        }
    return out


def to_markdown(rows: list[dict[str, Any]], sep: dict[str, Any]) -> str:
    lines = [
        "| body | emails | p50 ms | p95 ms | emails/s | CPU p50 / p95 ms | load avg | decisions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size_bytes'] // 1024} KB | {r['emails']} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['emails_per_s']} | {r['cpu_p50_ms']} / {r['cpu_p95_ms']} | {r['load_average']} "
            f"| {r['decisions']} |"
        )
    names = list(rows[0]["scanners"])
    lines += [
        "",
        "| scanner | " + " | ".join(f"{r['size_bytes'] // 1024} KB p50/p95 ms" for r in rows) + " |",
    ]
    lines.append("|---|" + "---|" * len(rows))
    for name in names:
        cells = [f"{r['scanners'][name]['p50_ms']} / {r['scanners'][name]['p95_ms']}" for r in rows]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Semantic detector: flag >= {sep['flag_threshold']}, quarantine >= {sep['quarantine_threshold']}",
        "",
        "| set | n | min | median | p90 | max | >= flag | >= quarantine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in sep["sets"].items():
        lines.append(
            f"| {name} | {s['n']} | {s['min']} | {s['median']} | {s['p90']} | {s['max']} "
            f"| {s['over_flag']} | {s['over_quarantine']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    pipeline = GuardPipeline.from_settings(get_settings()).warm()
    rows, sep = measure(pipeline), separation(pipeline)
    print(json.dumps({"latency": rows, "separation": sep}, indent=2) if args.json else to_markdown(rows, sep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
