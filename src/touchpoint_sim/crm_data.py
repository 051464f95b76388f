"""The simulated CRM's data set: HubSpot objects by type with their associations, and how a
search's filters, a request's properties and a deletion apply to an object (the server in
:mod:`touchpoint_sim.crm_server` answers with them)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from touchpoint_sim.population.conversations import thread_as_of
from touchpoint_sim.population.records import created_property, modified_property

_DATE_PROPERTIES = {
    "createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
    "hs_createdate",
    "hs_timestamp",
    "closedate",
    "closed_date",
    "hs_meeting_start_time",
    "hs_meeting_end_time",
    "hs_submission_timestamp",
}
#: HubSpot's calculated stage-history datetimes (hs_date_entered_<stage id>, ...)
_DATE_PREFIXES = ("hs_date_entered_", "hs_date_exited_")


def as_ms(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value)
    if text.lstrip("-").isdigit():
        return float(text)
    return datetime.fromisoformat(text).timestamp() * 1000


def matches(record: dict[str, Any], flt: dict[str, Any]) -> bool:
    name, op, value = flt["propertyName"], flt["operator"], flt.get("value")
    if name == "hs_object_id":
        return _compare(op, int(record["id"]), int(str(value)))
    raw = record["properties"].get(name)
    if op == "HAS_PROPERTY":
        return raw is not None
    if op == "NOT_HAS_PROPERTY":
        return raw is None
    if raw is None:
        return False
    if name in _DATE_PROPERTIES or name.endswith("date") or name.startswith(_DATE_PREFIXES):
        return _compare(op, as_ms(raw), as_ms(value))
    return _compare(op, str(raw), str(value))


def _compare(op: str, left: Any, right: Any) -> bool:
    return {
        "EQ": left == right,
        "NEQ": left != right,
        "GT": left > right,
        "GTE": left >= right,
        "LT": left < right,
        "LTE": left <= right,
    }.get(op, False)


def search_asked_at(object_type: str, groups: list[dict[str, Any]]) -> float | None:
    """A search's upper bound on the modified time (ms): the moment it is taken as asked."""
    modified = modified_property(object_type)
    bounds = [
        as_ms(f.get("value"))
        for g in groups
        for f in g.get("filters", [])
        if f.get("propertyName") == modified and f.get("operator") in ("LT", "LTE")
    ]
    return min(bounds) if bounds else None


class CrmData:
    """Objects by type, and associations by (from type, to type): {from id: [to ids]}."""

    def __init__(
        self,
        objects: dict[str, list[dict[str, Any]]],
        associations: dict[tuple[str, str], dict[str, list[str]]] | None = None,
        conversations: ConversationData | None = None,
    ) -> None:
        self.objects = objects
        self.conversations = conversations or ConversationData([], {})
        self.associations = dict(associations or {})
        # HubSpot associations go both ways: serve the reverse of every stored direction.
        for (from_type, to_type), links in list(self.associations.items()):
            if (to_type, from_type) not in self.associations:
                reverse: dict[str, list[str]] = {}
                for from_id in sorted(links, key=_id_order):
                    for to_id in links[from_id]:
                        reverse.setdefault(to_id, []).append(from_id)
                self.associations[(to_type, from_type)] = reverse
        self._by_id = {t: {r["id"]: r for r in records} for t, records in objects.items()}
        self._sorted = {
            t: sorted(records, key=lambda r: int(r["id"])) for t, records in objects.items()
        }

    @classmethod
    def from_dir(cls, crm_dir: Path) -> CrmData:
        """``crm_dir/<type>.json`` (a JSON list of objects each) and
        ``crm_dir/associations/<from>__<to>.json`` (``{from id: [to ids]}``), and the
        conversations inbox under ``crm_dir/conversations/`` when there is one."""
        objects = {p.stem: json.loads(p.read_text()) for p in sorted(crm_dir.glob("*.json"))}
        associations = {}
        for path in sorted((crm_dir / "associations").glob("*__*.json")):
            from_type, to_type = path.stem.split("__", 1)
            associations[(from_type, to_type)] = json.loads(path.read_text())
        inbox = crm_dir / "conversations"
        conversations = (
            ConversationData(
                json.loads((inbox / "threads.json").read_text()),
                json.loads((inbox / "messages.json").read_text()),
            )
            if (inbox / "threads.json").exists()
            else None
        )
        return cls(objects, associations, conversations)

    def get(self, object_type: str, object_id: str) -> dict[str, Any] | None:
        return self._by_id.get(object_type, {}).get(object_id)

    def listing(self, object_type: str) -> list[dict[str, Any]]:
        return self._sorted.get(object_type, [])


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (0, value)


def select_properties(
    record: dict[str, Any], object_type: str, wanted: list[str]
) -> dict[str, Any]:
    """The record with only the requested properties (null when unset), plus HubSpot's defaults."""
    props = record["properties"]
    names = [
        *wanted,
        "hs_object_id",
        created_property(object_type),
        modified_property(object_type),
    ]
    return {**record, "properties": {name: props.get(name) for name in dict.fromkeys(names)}}


def archived_at_ms(record: dict[str, Any]) -> float | None:
    """When the object was deleted (ms), None for a live one."""
    if record.get("archived") is True and record.get("archivedAt"):
        return as_ms(record["archivedAt"])
    return None


def as_live(record: dict[str, Any]) -> dict[str, Any]:
    """A deleted object as it was served before its deletion."""
    if record.get("archived") is not True:
        return record
    return {k: v for k, v in record.items() if k != "archivedAt"} | {"archived": False}


class ConversationData:
    """The conversations inbox: threads (as served at the end) and each thread's messages.
    Served as of a moment: a thread appears with its first message, and its status, latest
    timestamps and assignee follow the messages written so far."""

    def __init__(
        self, threads: list[dict[str, Any]], messages: dict[str, list[dict[str, Any]]]
    ) -> None:
        self.threads = sorted(threads, key=lambda t: _id_order(str(t.get("id", ""))))
        self.messages = messages
        times = [as_ms(m["createdAt"]) for ms in messages.values() for m in ms]
        #: from this moment on, every thread is served as written (no need to derive it)
        self.settled_ms = max(times, default=0.0)

    def threads_as_of(self, now_ms: float) -> list[dict[str, Any]]:
        """The threads that exist at ``now_ms``, in id order, as they are then."""
        if now_ms >= self.settled_ms:
            return self.threads
        states = (
            thread_as_of(t, self.messages.get(str(t.get("id")), []), now_ms) for t in self.threads
        )
        return [t for t in states if t is not None]

    def messages_as_of(self, thread_id: str, now_ms: float) -> list[dict[str, Any]]:
        """The thread's messages written by ``now_ms``, newest first (as the API lists them)."""
        written = [m for m in self.messages.get(thread_id, []) if as_ms(m["createdAt"]) <= now_ms]
        return sorted(written, key=lambda m: m["createdAt"], reverse=True)
