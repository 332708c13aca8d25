"""A lost database connection is transient (the job retries); a wrong query or password is not."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy.exc
from procrastinate.exceptions import ConnectorException

from app.pipeline import database_unavailable


def _wrapped(orig: Exception) -> sqlalchemy.exc.DBAPIError:
    try:
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, orig) from orig
    except sqlalchemy.exc.OperationalError as exc:
        return exc


def _from(cause: Exception) -> Exception:
    try:
        raise ConnectorException() from cause
    except ConnectorException as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),  # no SQLSTATE
        psycopg.InterfaceError("the connection is closed"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),  # 57P01
        psycopg.errors.CannotConnectNow("the database system is starting up"),  # 57P03
        psycopg.errors.SerializationFailure("could not serialize access"),  # 40001
        _wrapped(psycopg.OperationalError("consuming input failed")),
        _from(psycopg.OperationalError("connection failed")),
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
    ],
)
def test_unavailable(exc: Exception) -> None:
    assert database_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad input"),
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.InvalidPassword("password authentication failed"),  # 28P01: fix the config
        _wrapped(psycopg.errors.UndefinedTable("relation does not exist")),
    ],
)
def test_not_unavailable(exc: Exception) -> None:
    assert not database_unavailable(exc)
