"""HubSpot-style error bodies and the exception handlers that produce them.

Every error response has the shape
``{"status": "error", "message": ..., "category": ..., "correlationId": <uuid>, "errors": [...]}``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

VALIDATION_ERROR = "VALIDATION_ERROR"
OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
INVALID_AUTHENTICATION = "INVALID_AUTHENTICATION"
MISSING_SCOPES = "MISSING_SCOPES"
CONFLICT = "CONFLICT"

_CATEGORY_BY_STATUS = {
    400: VALIDATION_ERROR,
    401: INVALID_AUTHENTICATION,
    403: MISSING_SCOPES,
    404: OBJECT_NOT_FOUND,
    405: "METHOD_NOT_ALLOWED",
    409: CONFLICT,
    422: VALIDATION_ERROR,
}


class CrmError(Exception):
    """An error that is answered with a HubSpot-style body."""

    def __init__(
        self,
        status_code: int,
        category: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.category = category
        self.message = message
        self.errors = errors or []
        self.headers = dict(headers or {})


def error_body(*, category: str, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "category": category,
        "correlationId": str(uuid.uuid4()),
        "errors": errors or [],
    }


def error_response(exc: CrmError) -> JSONResponse:
    body = error_body(category=exc.category, message=exc.message, errors=exc.errors)
    logger.info(
        "CRM error %s %s correlationId=%s: %s",
        exc.status_code,
        exc.category,
        body["correlationId"],
        exc.message,
    )
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _crm_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CrmError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "message": str(item.get("msg", "invalid value")).removeprefix("Value error, "),
            "in": ".".join(str(part) for part in item.get("loc", ())),
            "code": str(item.get("type", "invalid")),
        }
        for item in exc.errors()
    ]
    summary = "; ".join(f"{error['in']}: {error['message']}" for error in errors) or "invalid request"
    return error_response(CrmError(400, VALIDATION_ERROR, f"Invalid input: {summary}", errors=errors))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    category = _CATEGORY_BY_STATUS.get(exc.status_code, "ERROR")
    return error_response(CrmError(exc.status_code, category, str(exc.detail), headers=exc.headers or None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CrmError, _crm_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
