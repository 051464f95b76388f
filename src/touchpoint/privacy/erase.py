"""Erasure of one person: raw records, the identity snapshot, the send log and data-quality
samples, then a full rebuild of every dbt model; tombstones keep the person out of later loads.

Who the person is: the identifiers given (an email, a HubSpot contact id), the identifiers that
the same raw records of one person carry with them (a contact's email, a Segment user's
anonymous ids), and every identifier the identity graph (``int_identifiers_mapped``) resolved to
the same customer. A record is theirs when one of its declared identifiers
(``Stream.identifiers``) is: a Segment event of their devices, a SendGrid event to their
address, a HubSpot contact, or a call, meeting, ticket, deal or survey answer associated with
their contact. Companies are not personal data and stay.

The marts are derived from raw, so after the raw rows go, a full refresh rebuilds them without
the person (aggregates included); the identity snapshot is history dbt never rebuilds, so its
rows are deleted here. Last, every table of the warehouse is searched for the person's emails,
Segment ids and customer keys: erasure fails loudly if any is left.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from touchpoint.errors import TouchpointError
from touchpoint.privacy.identifiers import IDENTIFIER_TYPES, normalise, tombstone_hash
from touchpoint.progress import progress
from touchpoint.sources.catalog import ALL_STREAMS
from touchpoint.sources.stream import Stream
from touchpoint.transform.dbt import BUILD, run_dbt
from touchpoint.warehouse.connection import connect, scalar
from touchpoint.warehouse.locks import take_alone_in_transaction
from touchpoint.warehouse.schema import ensure_schema

log = logging.getLogger(__name__)

#: dbt's relation of resolved identifiers, and the snapshot that keeps their history.
IDENTITY_MAP = "intermediate.int_identifiers_mapped"
IDENTITY_SNAPSHOT = "snapshots.identity_assignments"
#: Schemas the leftover search skips: the tombstones (hashes only) and PostgreSQL's own.
_NOT_SEARCHED = ("privacy", "pg_catalog", "information_schema", "pg_toast")


class ErasureError(TouchpointError):
    """The erasure could not be completed; the message says how far it got."""


@dataclass
class Person:
    """Everything that identifies one person in the warehouse."""

    identifiers: dict[str, set[str]] = field(
        default_factory=lambda: {t: set() for t in IDENTIFIER_TYPES}
    )
    customer_keys: set[str] = field(default_factory=set)

    def add(self, identifier_type: str, value: object) -> bool:
        normalised = normalise(identifier_type, value)
        if normalised is None or normalised in self.identifiers[identifier_type]:
            return False
        self.identifiers[identifier_type].add(normalised)
        return True

    def count(self) -> int:
        return sum(len(values) for values in self.identifiers.values())

    def searchable(self) -> list[str]:
        """Values distinctive enough to search for as text anywhere (not short numeric ids)."""
        return sorted(
            {
                *self.identifiers["email"],
                *self.identifiers["segment_user"],
                *self.identifiers["segment_anonymous"],
                *self.customer_keys,
            }
        )


@dataclass
class Erasure:
    erasure_id: str
    person: Person
    #: rows removed or scrubbed, per table (before the rebuild)
    rows: dict[str, int]
    dry_run: bool
    rebuilt: bool = False
    #: tables the final search read, when it ran
    searched_tables: int = 0


def _value(identifier_type: str) -> sql.Composable:
    """A JSON path value as the warehouse compares it (see ``normalise``)."""
    text = sql.SQL("trim(v #>> '{}')")
    return sql.SQL("lower({})").format(text) if identifier_type == "email" else text


def _matches(stream: Stream, person: Person) -> tuple[sql.Composable, list[object]]:
    """A predicate on a raw row: one of its declared identifiers is the person's."""
    parts: list[sql.Composable] = []
    params: list[object] = []
    for identifier_type, path in stream.identifiers:
        values = sorted(person.identifiers[identifier_type])
        if values:
            parts.append(
                sql.SQL(
                    "exists (select 1 from jsonb_path_query(payload, {}::jsonpath) as p (v)"
                    " where {} = any(%s))"
                ).format(sql.Literal(path), _value(identifier_type))
            )
            params.append(values)
    return (sql.SQL(" or ").join(parts) if parts else sql.SQL("false")), params


def _table(stream: Stream) -> sql.Identifier:
    return sql.Identifier(*stream.table.split("."))


def _of_one_person(stream: Stream) -> bool:
    # a list of associated contacts may name other people too: it is not followed
    return bool(stream.identifiers) and not any("[*]" in path for _type, path in stream.identifiers)


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    return bool(scalar(conn, "select to_regclass(%s) is not null", (relation,)))


def find_person(conn: psycopg.Connection, emails: Iterable[str], crm_ids: Iterable[str]) -> Person:
    """The person named by ``emails`` and HubSpot ``crm_ids``, with every identifier that is
    theirs."""
    person = Person()
    for email in emails:
        person.add("email", email)
    for crm_id in crm_ids:
        person.add("hubspot_contact", crm_id)
    if not person.count():
        raise ErasureError("name the person to erase: --email and/or --crm-id")
    # One hop through records that belong to one person (a contact's email, a Segment user's
    # devices), then the identity graph's closure.
    for stream in ALL_STREAMS:
        if not _of_one_person(stream) or not _exists(conn, stream.table):
            continue
        predicate, params = _matches(stream, person)
        for identifier_type, path in stream.identifiers:
            query = sql.SQL(
                "select distinct {} from {} as t,"
                " jsonb_path_query(t.payload, {}::jsonpath) as p (v) where {}"
            ).format(_value(identifier_type), _table(stream), sql.Literal(path), predicate)
            for (value,) in conn.execute(query, params).fetchall():
                person.add(identifier_type, value)
    if _exists(conn, IDENTITY_MAP):
        pairs = [(kind, value) for kind, values in person.identifiers.items() for value in values]
        keys = conn.execute(
            f"select distinct customer_key from {IDENTITY_MAP} as m"
            " join unnest(%s::text[], %s::text[]) as given (kind, value)"
            " on m.identifier_type = given.kind and m.identifier = given.value"
            " where m.customer_key is not null",
            ([k for k, _ in pairs], [v for _, v in pairs]),
        ).fetchall()
        person.customer_keys = {key for (key,) in keys}
        for kind, value in conn.execute(
            f"select identifier_type, identifier from {IDENTITY_MAP} where customer_key = any(%s)",
            (sorted(person.customer_keys),),
        ).fetchall():
            if kind in person.identifiers:
                person.add(kind, value)
    return person


def _delete_raw(conn: psycopg.Connection, person: Person) -> dict[str, int]:
    removed: dict[str, int] = {}
    for stream in ALL_STREAMS:
        if not _exists(conn, stream.table):
            continue
        predicate, params = _matches(stream, person)
        removed[stream.table] = conn.execute(
            sql.SQL("delete from {} where {}").format(_table(stream), predicate), params
        ).rowcount
    # Quarantined text is searched as text: emails and Segment ids are distinctive; a contact
    # id is matched only where it stands as a JSON "id".
    texts = person.searchable()
    contact_ids = sorted(i for i in person.identifiers["hubspot_contact"] if i.isalnum())
    removed["raw._quarantine"] = conn.execute(
        "delete from raw._quarantine where exists (select 1 from unnest(%s::text[]) as s (value)"
        "                                          where strpos(lower(raw_text),"
        " lower(s.value)) > 0)"
        " or (stream like 'hubspot%%' and exists (select 1 from unnest(%s::text[]) as c (id)"
        "     where raw_text ~ ('\"id\"\\s*:\\s*\"?' || c.id || '\"?\\s*[,}]')))",
        (texts, contact_ids),
    ).rowcount
    return removed


def _delete_derived(conn: psycopg.Connection, person: Person) -> dict[str, int]:
    removed: dict[str, int] = {}
    if _exists(conn, IDENTITY_SNAPSHOT):
        pairs = [(kind, value) for kind, values in person.identifiers.items() for value in values]
        removed[IDENTITY_SNAPSHOT] = conn.execute(
            f"delete from {IDENTITY_SNAPSHOT} as s where customer_key = any(%s)"
            " or exists (select 1 from unnest(%s::text[], %s::text[]) as given (kind, value)"
            "            where s.identifier_type = given.kind and s.identifier = given.value)",
            (sorted(person.customer_keys), [k for k, _ in pairs], [v for _, v in pairs]),
        ).rowcount
    # The send log keeps that a report went out, not to whom: the address becomes its hash.
    emails = sorted(person.identifiers["email"])
    removed["reporting.deliveries"] = conn.execute(
        "update reporting.deliveries set recipient = 'erased:' || encode(sha256(convert_to("
        "'email:' || lower(trim(recipient)), 'UTF8')), 'hex'), last_error = null"
        " where lower(trim(recipient)) = any(%s)",
        (emails,),
    ).rowcount
    # Data-quality results may quote sampled values.
    removed["dq.expectation_results"] = conn.execute(
        "update dq.expectation_results set observed_value = '[erased]' where exists"
        " (select 1 from unnest(%s::text[]) as s (value)"
        " where strpos(lower(observed_value), lower(s.value)) > 0)",
        (person.searchable(),),
    ).rowcount
    return removed


def _tombstone(
    conn: psycopg.Connection, erasure_id: str, person: Person, rows: dict[str, int]
) -> None:
    from psycopg.types.json import Jsonb

    conn.execute(
        "insert into privacy.erasures (erasure_id, identifiers, rows_removed) values (%s, %s, %s)",
        (erasure_id, person.count(), Jsonb(rows)),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "insert into privacy.tombstones (identifier_type, identifier_hash, erasure_id)"
            " values (%s, %s, %s)"
            " on conflict do nothing",
            [
                (kind, tombstone_hash(kind, value), erasure_id)
                for kind, values in person.identifiers.items()
                for value in sorted(values)
            ],
        )


def leftovers(conn: psycopg.Connection, person: Person) -> dict[str, int]:
    """Rows of any table (outside privacy) whose text holds one of the person's emails, Segment
    ids or customer keys: what an erasure must leave empty."""
    needles = [value.lower() for value in person.searchable()]
    if not needles:
        return {}
    tables = conn.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_type = 'BASE TABLE' and table_schema <> all(%s) order by 1, 2",
        (list(_NOT_SEARCHED),),
    ).fetchall()
    found: dict[str, int] = {}
    with progress("erase: tables searched", total=len(tables), unit="tables") as searched:
        for schema, table in tables:
            searched.advance()
            row = conn.execute(
                sql.SQL(
                    "select count(*) from {} as t where exists"
                    " (select 1 from unnest(%s::text[]) as s (value)"
                    " where strpos(lower(t::text), s.value) > 0)"
                ).format(sql.Identifier(schema, table)),
                (needles,),
            ).fetchone()
            if row and row[0]:
                found[f"{schema}.{table}"] = row[0]
    return found


def _count_tables(conn: psycopg.Connection) -> int:
    return int(
        scalar(
            conn,
            "select count(*) from information_schema.tables where table_type = 'BASE TABLE'"
            " and table_schema <> all(%s)",
            (list(_NOT_SEARCHED),),
        )
    )


def erase(
    warehouse_url: str,
    emails: Iterable[str],
    crm_ids: Iterable[str],
    project_dir: Path,
    var_dir: Path,
    dry_run: bool = False,
    note: Callable[[str], None] = log.info,
) -> Erasure:
    """Erase one person (see the module's docstring); with ``dry_run``, only count what would go."""
    erasure_id = uuid.uuid4().hex
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
        with conn.transaction() as tx:
            # one erasure at a time: two could tombstone and rebuild over each other
            conn.execute("select pg_advisory_xact_lock(hashtext('touchpoint.privacy.erase'))")
            # and no load in flight: one started before would write the person back
            take_alone_in_transaction(conn, "erasure")
            person = find_person(conn, emails, crm_ids)
            note(
                f"found {person.count()} identifier(s) and "
                f"{len(person.customer_keys)} customer key(s)"
            )
            rows = {**_delete_raw(conn, person), **_delete_derived(conn, person)}
            if dry_run:
                raise psycopg.Rollback(tx)
            _tombstone(conn, erasure_id, person, rows)
    result = Erasure(erasure_id, person, rows, dry_run=dry_run)
    if dry_run:
        return result
    if not any(rows.values()):
        note(
            f"nothing of this person is stored; {person.count()} tombstone(s) keep them out of "
            "later loads"
        )
        return result
    note(
        f"raw rows removed and {person.count()} tombstone(s) written (erasure {erasure_id});"
        " rebuilding every dbt model without them (dbt build --full-refresh)"
    )
    try:
        with progress("erase: rebuilding the marts (dbt build --full-refresh)"):
            run_dbt([*BUILD, "--full-refresh"], project_dir, warehouse_url, var_dir)
    except TouchpointError as exc:
        raise ErasureError(
            f"erasure {erasure_id}: the raw records are gone and tombstoned, but the rebuild of "
            f"the marts failed ({exc}); the marts still hold the person until "
            "`dbt build --full-refresh` succeeds"
        ) from None
    result.rebuilt = True
    with connect(warehouse_url) as conn:
        left = leftovers(conn, person)
        result.searched_tables = _count_tables(conn)
    if left:
        raise ErasureError(
            f"erasure {erasure_id}: the person is still in "
            f"{', '.join(f'{t} ({n} rows)' for t, n in left.items())}"
        )
    return result
