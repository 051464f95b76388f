"""The naive peer's child program: every event into a DataFrame, then ``DataFrame.to_sql``.

Run by ``bench.peers.run_pandas`` with the project's python, as
``python pandas_load.py REQUEST.json RESULT.json``. Nothing is tuned: ``to_sql``'s default
``method`` (one executemany INSERT per chunk), ``chunksize=5000``, the whole input in memory.
Columns: natural_key, event_time (timestamptz), payload (jsonb, the event serialised by
SQLAlchemy's JSONB type).
"""

from __future__ import annotations

import json
import time
from importlib.metadata import version
from typing import Any

import _landing


def sqlalchemy_url(dsn: str) -> str:
    """``postgresql+psycopg://...`` (psycopg 3) from a libpq URL."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise SystemExit(f"pandas_load: not a PostgreSQL URL: {dsn!r}")
    return "postgresql+psycopg://" + rest


def main(request_path: str, result_path: str) -> int:
    with open(request_path) as f:
        request = json.load(f)
    source, files = request["source"], request["files"]
    schema, table = request["schema"], request["table"]

    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import JSONB

    engine = sa.create_engine(sqlalchemy_url(request["dsn"]))
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema if not exists "{schema}"'))

    key_name = _landing.NATURAL_KEY[source]
    started = time.perf_counter()
    keys: list[Any] = []
    times: list[Any] = []
    # The events themselves, not their JSON text: SQLAlchemy's JSONB type serialises its value,
    # so a str would be stored as a jsonb *string* ("{\"type\": ...}"), not an object.
    payloads: list[dict[str, Any]] = []
    for path in files:
        for event in _landing.iter_events(path):
            keys.append(event.get(key_name))
            times.append(event.get("timestamp"))
            payloads.append(event)
    frame = pd.DataFrame({"natural_key": keys, "event_time": times, "payload": payloads})
    if source == "web":
        frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
    else:
        frame["event_time"] = pd.to_datetime(frame["event_time"], unit="s", utc=True)
    read_done = time.perf_counter()
    frame.to_sql(
        table,
        engine,
        schema=schema,
        if_exists="append",
        index=False,
        chunksize=5000,
        dtype={"payload": JSONB},
    )
    done = time.perf_counter()
    engine.dispose()

    result = {
        "seconds": done - started,
        "read_seconds": read_done - started,
        "to_sql_seconds": done - read_done,
        "events_read": len(frame),
        "schema": schema,
        "table": table,
        "versions": {name: version(name) for name in ("pandas", "sqlalchemy", "psycopg")},
    }
    return _landing.write_result(result_path, result)


if __name__ == "__main__":
    _landing.run_child(main, "pandas_load.py")
