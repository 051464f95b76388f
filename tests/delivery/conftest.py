"""Fixtures of the delivery tests: a fresh warehouse database with the delivery ledger."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from touchpoint.warehouse.schema import ensure_schema


@pytest.fixture
def conn(fresh_db) -> Iterator[psycopg.Connection]:
    """A connection to a fresh database whose pre-dbt schema (the ledger) exists."""
    with psycopg.connect(fresh_db) as connection:
        ensure_schema(connection)
        connection.commit()
        yield connection
