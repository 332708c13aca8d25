"""The adversarial email corpus: where it lives, its manifest, and the vocabulary the manifest uses.

``datasets/attacks/NNN-short-name.eml`` are hostile emails to Northwind Outfitters
(support@northwind.example), most of them otherwise ordinary customer mail. ``manifest.jsonl``
has one line per file: ``{"file", "technique": [...], "goal", "lang", "notes"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from app.settings import REPO_ROOT

ATTACKS_DIR = Path(__file__).resolve().parent / "datasets" / "attacks"
# Written after the detectors were tuned on ATTACKS_DIR, by someone who had not read them, and
# never used to tune anything: detection on it estimates how the guard does on unseen attacks.
HELDOUT_DIR = Path(__file__).resolve().parent / "datasets" / "attacks-heldout"
BENIGN_DIR = REPO_ROOT / "infra" / "demo" / "mailbox"
MANIFEST = "manifest.jsonl"
# The demo mailbox holds a few hostile emails of its own; they are not benign.
NOT_BENIGN_MARKERS = ("injection", "phishing", "spam")

# What the attacker wants the agent to do.
GOALS = ("refund", "forward", "recipient", "cancel", "exfiltrate", "tool", "other")
LANGS = ("en", "de", "fr", "es", "it", "pt", "nl", "mixed")

TECHNIQUES: dict[str, str] = {
    # hidden HTML/CSS text
    "hidden-display-none": "text in an element styled display:none",
    "hidden-font-size-0": "text with font-size 0",
    "hidden-white-on-white": "white text on a white background (#fff, white, rgb(255,255,255))",
    "hidden-attribute": "element with the HTML hidden attribute",
    "hidden-opacity-0": "text with opacity 0",
    "hidden-visibility": "text styled visibility:hidden",
    "hidden-max-height": "text in a max-height:0 overflow:hidden box",
    "hidden-tiny-text": "1px, near-white text (not zero, not pure white)",
    "hidden-offscreen": "text positioned off-screen (left:-9999px)",
    "hidden-same-color": "text in the same (non-white) colour as its background",
    "html-comment": "instructions in an HTML comment (incl. Outlook conditional comments)",
    # invisible / confusable characters
    "zero-width": "zero-width spaces/joiners/word joiners splitting keywords",
    "bidi": "bidirectional overrides or isolates reorder what is displayed",
    "tag-chars": "ASCII smuggled as invisible Unicode tag characters (U+E0000 block)",
    "soft-hyphen": "soft hyphens (U+00AD) splitting keywords",
    "invisible-other": "other invisible code points (Hangul filler, Mongolian vowel separator)",
    "homoglyph": "look-alike letters (Cyrillic, Greek, fullwidth, IDN domains)",
    # message structure
    "quoted-reply": "instructions inside the quoted part of a reply chain",
    "fake-forward": "a 'forwarded' message from IT Security / management instructing the assistant",
    "forwarded-attachment": "the fake forward is an attached message/rfc822 part",
    "alt-mismatch": "multipart/alternative whose text/plain and text/html parts disagree",
    "signature-injection": "instructions inside the signature block",
    "calendar-invite": "instructions in a calendar invite (SUMMARY/LOCATION/DESCRIPTION)",
    "long-body": "a very long body with the injection at the end",
    "base64": "base64-encoded instructions (inline, as a block, or as transfer encoding)",
    "data-uri": "a data: URI carrying an encoded payload",
    # headers and attachments
    "subject-injection": "instructions in the Subject line",
    "encoded-header": "RFC 2047/2231 encoded header or parameter",
    "display-name-injection": "instructions in the From display name",
    "spoofed-sender": "sender forged to or posing as Northwind itself / a look-alike internal domain",
    "reply-to-header": "a Reply-To header (or request) redirecting replies elsewhere",
    "attachment-name": "instructions or tricks in an attachment file name",
    "path-traversal-name": "attachment names with ../ , absolute, UNC or encoded paths",
    "dangerous-attachment": "executable attachment (double extension, RTLO-disguised)",
    "attachment-content": "instructions inside an attachment's content",
    # wording of the injection
    "ignore-previous": "'ignore (all) previous instructions' and direct translations",
    "paraphrase": "'disregard the above', 'forget your rules', 'guidelines updated', ...",
    "developer-mode": "'you are now in developer/maintenance mode'",
    "roleplay": "role-play jailbreak ('you are RefundBot')",
    "authority-claim": "claims of approval or policy from management, IT, finance or a reviewer",
    "role-line": "SYSTEM:/assistant:/developer: lines, ChatML, [INST], Human:/AI: transcripts",
    "fake-tool-call-json": "tool-call or plan JSON in the body",
    "fake-tool-call-xml": "tool-call XML (<function_calls>, <tool_call>) in the body",
    "fake-tool-call-yaml": "a YAML action block in the body",
    "fake-tool-result": "a fabricated tool result / observation",
    "markdown-image-exfil": "markdown/HTML image or link whose URL would carry data out",
    "markdown-instructions": "a markdown 'Instructions for the AI' checklist",
    "prompt-leak": "asks for the system prompt, tool list or other customers' data",
    "crm-poisoning": "tries to plant a persistent note or status in the CRM",
    "delimiter-escape": "tries to close the spotlighting data markers",
    "multilingual": "written in a language other than English",
    "mixed-language": "several languages mixed within the instruction",
    "subtle": "no injection wording: an ordinary-looking request with a harmful goal",
}


@dataclass(frozen=True)
class AttackCase:
    file: str
    technique: tuple[str, ...]
    goal: str
    lang: str
    notes: str


def load_manifest(attacks_dir: Path = ATTACKS_DIR) -> dict[str, AttackCase]:
    """The manifest's entries by file name (empty when the directory has no manifest)."""
    path = attacks_dir / MANIFEST
    if not path.exists():
        return {}
    cases: dict[str, AttackCase] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["file"] in cases:
            raise ValueError(f"{path}:{number}: {row['file']} is listed twice")
        cases[row["file"]] = AttackCase(
            file=row["file"],
            technique=tuple(row["technique"]),
            goal=row["goal"],
            lang=row["lang"],
            notes=row.get("notes", ""),
        )
    return cases


def attack_files(attacks_dir: Path = ATTACKS_DIR) -> list[Path]:
    return sorted(attacks_dir.glob("*.eml"))


def is_benign_name(name: str) -> bool:
    return not any(marker in name.lower() for marker in NOT_BENIGN_MARKERS)


def benign_files(benign_dir: Path = BENIGN_DIR) -> list[Path]:
    return [p for p in sorted(benign_dir.glob("*.eml")) if is_benign_name(p.name)]
