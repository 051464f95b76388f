"""customer_key stays put when identifiers join, and merges across runs are logged."""

from __future__ import annotations

import json

import psycopg
import pytest

from touchpoint.extract.run import load_file
from touchpoint.sources.catalog import SEGMENT_EVENTS
from touchpoint.warehouse.connection import connect

# dbt builds of worlds of its own
pytestmark = pytest.mark.slow


def identify(
    message_id: str,
    at: str,
    user_id: str,
    email: str | None = None,
    anonymous_id: str = "dev-1",
    kind: str = "identify",
    previous_id: str | None = None,
) -> dict:
    event = {
        "type": kind,
        "messageId": message_id,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "timestamp": at,
        "receivedAt": at,
    }
    if email:
        event["traits"] = {"email": email}
    if previous_id:
        event["previousId"] = previous_id
    return event


def load(url: str, tmp_path, name: str, events: list[dict]) -> None:
    path = tmp_path / f"{name}.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    with connect(url) as conn:
        load_file(conn, SEGMENT_EVENTS, str(path))


def build_identity(url: str, settings) -> None:
    """Only the identity models and what they need (faster than the whole project)."""
    from touchpoint.transform.dbt import run_dbt
    from touchpoint.warehouse.schema import ensure_schema

    with connect(url) as conn:
        ensure_schema(conn)
    run_dbt(
        [
            "build",
            "--select",
            "+int_identity_key_changes",
            "+int_identity_merges",
            "+int_identity_components",
        ],
        settings.dbt_project_dir,
        url,
        settings.var_dir,
    )


def keys(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "select identifier_node, customer_key from intermediate.int_identifiers_mapped"
            )
        )


def test_keys_survive_new_identifiers_and_merges_are_logged(fresh_db, tmp_path, settings):
    load(
        fresh_db,
        tmp_path,
        "first",
        [
            identify("m1", "2026-10-05T10:00:00Z", "user-a", "a@example.com", anonymous_id="dev-a"),
            identify("m2", "2026-10-06T10:00:00Z", "user-b", "b@example.com", anonymous_id="dev-b"),
        ],
    )
    build_identity(fresh_db, settings)
    first = keys(fresh_db)
    key_a, key_b = first["email:a@example.com"], first["email:b@example.com"]
    assert key_a and key_b and key_a != key_b

    # A new device for user-a, then an alias that says user-b is user-a.
    load(
        fresh_db,
        tmp_path,
        "second",
        [
            identify("m3", "2026-10-07T10:00:00Z", "user-a", anonymous_id="dev-a2"),
            identify(
                "m4",
                "2026-10-08T10:00:00Z",
                "user-a",
                kind="alias",
                previous_id="user-b",
                anonymous_id="dev-b",
            ),
        ],
    )
    build_identity(fresh_db, settings)
    second = keys(fresh_db)
    assert second["segment_anonymous:dev-a2"] == key_a  # the new identifier joined A
    assert second["email:a@example.com"] == key_a  # A kept its key
    assert second["email:b@example.com"] == key_a  # B merged into the earlier customer

    with psycopg.connect(fresh_db) as conn:
        changes = conn.execute(
            "select identifier_node, old_customer_key, new_customer_key"
            " from intermediate.int_identity_key_changes order by 1"
        ).fetchall()
        merges = {
            r[0] for r in conn.execute("select merged_node from intermediate.int_identity_merges")
        }
    assert ("email:b@example.com", key_b, key_a) in changes
    assert all(old == key_b and new == key_a for _, old, new in changes)
    assert "email:b@example.com" in merges


def test_a_shared_role_address_never_merges_two_people(fresh_db, tmp_path, settings):
    load(
        fresh_db,
        tmp_path,
        "shared",
        [
            identify(
                "s1", "2026-10-05T10:00:00Z", "user-x", "info@acme.example", anonymous_id="dev-x"
            ),
            identify(
                "s2", "2026-10-05T11:00:00Z", "user-y", "info@acme.example", anonymous_id="dev-y"
            ),
        ],
    )
    build_identity(fresh_db, settings)
    mapped = keys(fresh_db)
    assert mapped["segment_user:user-x"] != mapped["segment_user:user-y"]
    assert mapped.get("email:info@acme.example") is None  # a role address identifies nobody


def test_a_group_over_the_identifier_cap_is_not_merged_and_is_reported(
    fresh_db, tmp_path, settings
):
    # 30 devices claiming one user: a shared kiosk or a tracking bug, not one person
    load(
        fresh_db,
        tmp_path,
        "kiosk",
        [
            identify(f"k{i}", "2026-10-05T10:00:00Z", "user-kiosk", anonymous_id=f"kiosk-{i}")
            for i in range(30)
        ],
    )
    build_identity(fresh_db, settings)
    mapped = keys(fresh_db)
    devices = {
        node: key for node, key in mapped.items() if node.startswith("segment_anonymous:kiosk-")
    }
    assert len(devices) == 30 and all(key is None for key in devices.values())
    with psycopg.connect(fresh_db) as conn:
        over = conn.execute(
            "select count(*) from intermediate.int_identity_components where is_over_cap"
        ).fetchone()[0]
    assert over == 31
