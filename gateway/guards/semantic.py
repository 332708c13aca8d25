"""Semantic injection detector: sentence windows of the email vs a corpus of known attacks.

Score = the highest cosine similarity between an embedded window (see ``windows``) and any corpus
sentence. Flag at ``semantic_flag_threshold``, quarantine at ``semantic_quarantine_threshold``;
text hidden by HTML quarantines at the flag threshold, quoted history and signatures never
quarantine (people forward attacks to support to report them). The corpus is searched in
Postgres with pgvector (``<=>``, HNSW index) when the database has it and the table is seeded,
otherwise in-process with numpy over the same sentences; the result says which ran.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import psycopg

from app.db import libpq_url
from app.repo import injection_corpus as repo
from app.settings_guard import GuardSettings
from gateway.guards.base import Decision, Finding, result
from gateway.guards.corpus import Sentence, load_sentences
from gateway.guards.embeddings import Embedder, Vectors
from gateway.guards.runtime import shared
from gateway.guards.windows import select_windows
from gateway.mime import ParsedEmail

log = logging.getLogger(__name__)
NAME = "semantic_injection"
_PARTS = {
    "hidden": "hidden HTML text",
    "subject": "subject",
    "text": "new text",
    "quoted": "quoted/forwarded text",
    "signature": "signature",
}


def shared_embedder(settings: GuardSettings) -> Embedder:
    return shared(
        ("embedder", settings.embedding_model_dir, settings.torch_threads), lambda: Embedder(settings)
    )


class NumpyIndex:
    """The corpus as a matrix of unit vectors; similarity is a dot product."""

    backend = "numpy"

    def __init__(self, embedder: Embedder, sentences: list[Sentence]) -> None:
        self.sentences = sentences
        self.matrix: Vectors = embedder.encode([s.text for s in sentences])

    def nearest(self, vectors: Vectors) -> list[tuple[float, Sentence]]:
        sims = vectors @ self.matrix.T
        best = sims.argmax(axis=1)
        return [(float(sims[i, j]), self.sentences[j]) for i, j in enumerate(best)]


class PgvectorIndex:
    """The ``injection_corpus`` table; one autocommit connection per process, reopened when lost."""

    backend = "pgvector"

    def __init__(self, database_url: str) -> None:
        self.url = libpq_url(database_url)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        return self._conn

    def status(self) -> tuple[bool, str]:
        """Whether the corpus can be queried here, and if not why."""
        with self._lock:
            conn = self._connection()
            if not repo.corpus_ready(conn):
                available = repo.vector_available(conn)
                return (
                    False,
                    "corpus table missing: run sync_corpus" if available else "no pgvector on this server",
                )
            if repo.count_entries(conn) == 0:
                return False, "corpus table empty: run sync_corpus"
            return True, "ok"

    def nearest(self, vectors: Vectors) -> list[tuple[float, Sentence]]:
        with self._lock:
            try:
                found = repo.nearest(self._connection(), embeddings=vectors.tolist())
            except psycopg.OperationalError:
                self._conn = None  # a dropped connection: one retry on a fresh one
                found = repo.nearest(self._connection(), embeddings=vectors.tolist())
        if any(n is None for n in found):
            raise LookupError("the injection corpus table is empty")
        return [(n.similarity, Sentence(n.text, n.lang)) for n in found if n is not None]


class SemanticDetector:
    def __init__(self, settings: GuardSettings, *, database_url: str | None = None) -> None:
        self.settings = settings
        self.embedder = shared_embedder(settings)
        self._numpy: NumpyIndex | None = None
        self._pg: PgvectorIndex | None = None
        self.backend_note = ""
        if settings.semantic_backend != "numpy" and database_url:
            self._pg, self.backend_note = self._try_pgvector(database_url)
        elif settings.semantic_backend == "pgvector":
            self.backend_note = "pgvector requested but no database URL given"
        if self._pg is None:
            self._numpy = self._in_process()

    @property
    def backend(self) -> str:
        return "pgvector" if self._pg is not None else "numpy"

    def _in_process(self) -> NumpyIndex:
        key = ("corpus", self.settings.embedding_model_dir, self.settings.torch_threads)
        return shared(key, lambda: NumpyIndex(self.embedder, load_sentences()))

    def _try_pgvector(self, database_url: str) -> tuple[PgvectorIndex | None, str]:
        if self.embedder.dim != repo.DIM:
            return None, f"embedding model has {self.embedder.dim} dimensions, the table {repo.DIM}"
        index = PgvectorIndex(database_url)
        try:
            ready, why = index.status()
        except psycopg.Error as exc:
            return None, f"database unreachable ({type(exc).__name__})"
        return (index, "") if ready else (None, why)

    def degraded(self) -> str | None:
        """A ``Verdict.degraded`` entry when pgvector was asked for explicitly and is not used."""
        if self.settings.semantic_backend == "pgvector" and self._pg is None:
            return f"{NAME}: pgvector unavailable ({self.backend_note}); in-process corpus used"
        return None

    def _nearest(self, vectors: Vectors) -> tuple[list[tuple[float, Sentence]], str]:
        if self._pg is not None:
            try:
                return self._pg.nearest(vectors), "pgvector"
            except (psycopg.Error, LookupError) as exc:
                log.warning("pgvector query failed, using the in-process corpus: %s", exc)
                self._numpy = self._numpy or self._in_process()
                return self._numpy.nearest(vectors), f"numpy (pgvector query failed: {type(exc).__name__})"
        assert self._numpy is not None
        backend = f"numpy ({self.backend_note})" if self.backend_note else "numpy"
        return self._numpy.nearest(vectors), backend

    def scan(self, parsed: ParsedEmail) -> Finding:
        start = time.perf_counter()
        s = self.settings
        selection = select_windows(
            parsed,
            max_windows=s.semantic_max_windows,
            max_chars=s.semantic_max_chars,
            cue_gate=s.semantic_cue_gate,
        )
        notes = []
        if selection.truncated:
            notes.append(
                f"only the first {s.semantic_max_chars} characters of {', '.join(selection.truncated)}"
            )
        if selection.candidates > len(selection.windows):
            notes.append(f"{len(selection.windows)} of {selection.candidates} candidate windows embedded")
        note = f"{NAME}: partial coverage: {'; '.join(notes)}" if notes else None
        if not selection.windows:
            reason = f"no window with instruction cues of {selection.total} (backend {self.backend})"
            return Finding(
                result(NAME, start, "pass", 0.0, [reason]), note=note, attributes=(("backend", self.backend),)
            )
        windows = selection.windows
        matches, backend = self._nearest(self.embedder.encode([w.text for w in windows]))
        best = int(np.argmax([sim for sim, _ in matches]))
        sim, attack = matches[best]
        part = windows[best].part
        decision: Decision = "pass"
        if sim >= s.semantic_quarantine_threshold or (part == "hidden" and sim >= s.semantic_flag_threshold):
            decision = "flag" if part in ("quoted", "signature") else "quarantine"
        elif sim >= s.semantic_flag_threshold:
            decision = "flag"
        if decision == "pass":
            reasons = [f"best of {len(windows)} window(s): {sim:.2f} (backend {backend})"]
        else:
            reasons = [
                f"semantic: a sentence in the {_PARTS[part]} is {sim:.2f} similar to a known injection "
                f'({attack.lang}: "{attack.text[:70]}") [backend {backend}]'
            ]
        attributes = (("backend", backend.split(" ")[0]), ("windows", len(windows)))
        return Finding(result(NAME, start, decision, sim, reasons), note=note, attributes=attributes)
