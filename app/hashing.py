"""Stable content hashes: bind approvals and idempotency keys to exact payloads."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel


def payload_hash(payload: BaseModel | dict[str, Any]) -> str:
    """Stable hash of a JSON payload: binds approvals and idempotency keys to exact content."""
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
