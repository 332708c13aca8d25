"""Composition root and core: settings, database, telemetry, queue, CLI and process entry points."""
