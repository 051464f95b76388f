"""The declared streams of every source. Adding a stream is adding a declaration here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from touchpoint.extract.stream import InvalidRecord, Record, Stream
from touchpoint.extract.timeparse import from_iso, from_unix_millis_or_iso, from_unix_seconds


# -- Email: SendGrid Event Webhook batches ---------------------------------------------------
def _sendgrid_key(event: Record) -> str:
    # `dropped` and some other events have no sg_event_id: fall back to a content hash, so the
    # same event delivered twice still loads once.
    if event.get("sg_event_id"):
        return str(event["sg_event_id"])
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _sendgrid_time(event: Record):
    if "timestamp" not in event:
        raise InvalidRecord("missing timestamp")
    return from_unix_seconds(event["timestamp"])


def _sendgrid_accept(event: Record) -> bool:
    if not event.get("event"):
        raise InvalidRecord("missing event type")
    return True


SENDGRID_EVENTS = Stream(
    name="sendgrid_events",
    table="raw.sendgrid_events",
    source="email",
    natural_key=_sendgrid_key,
    event_time=_sendgrid_time,
    object_id=lambda event: event.get("sg_message_id"),
    accept=_sendgrid_accept,
)


# -- Web: Segment events as the S3 destination writes them -----------------------------------
def _segment_key(event: Record) -> str:
    if not event.get("messageId"):
        raise InvalidRecord("missing messageId")
    return str(event["messageId"])


def _segment_time(event: Record):
    # `timestamp` is Segment's corrected event time (client time adjusted for clock skew using
    # sentAt/receivedAt); fall back to originalTimestamp, then receivedAt when it is absent.
    for name in ("timestamp", "originalTimestamp", "receivedAt"):
        if event.get(name):
            return from_iso(event[name])
    raise InvalidRecord("no timestamp, originalTimestamp or receivedAt")


def _segment_accept(event: Record) -> bool:
    if not event.get("type"):
        raise InvalidRecord("missing type")
    if not (event.get("userId") or event.get("anonymousId")):
        raise InvalidRecord("neither userId nor anonymousId")
    return True


SEGMENT_EVENTS = Stream(
    name="segment_events",
    table="raw.segment_events",
    source="web",
    natural_key=_segment_key,
    event_time=_segment_time,
    object_id=lambda event: event.get("userId") or event.get("anonymousId"),
    accept=_segment_accept,
)


# -- CRM: HubSpot CRM v3 objects -------------------------------------------------------------
@dataclass(frozen=True)
class HubSpotObject:
    """A HubSpot object type: its API name, modified-date property and the properties to fetch."""

    object_type: str
    modified_property: str
    properties: tuple[str, ...]
    stream: Stream


def _hubspot_stream(object_type: str, modified_property: str) -> Stream:
    def modified(record: Record):
        raw = (record.get("properties") or {}).get(modified_property) or record.get("updatedAt")
        if raw is None:
            raise InvalidRecord(f"missing {modified_property} and updatedAt")
        return from_unix_millis_or_iso(raw)

    def key(record: Record) -> str:
        if not record.get("id"):
            raise InvalidRecord("missing id")
        return f"{record['id']}@{modified(record).isoformat()}"

    return Stream(
        name=f"hubspot_{object_type}",
        table=f"raw.hubspot_{object_type}",
        source="crm",
        natural_key=key,
        event_time=modified,
        object_id=lambda record: str(record["id"]),
    )


HUBSPOT_CONTACTS = HubSpotObject(
    object_type="contacts",
    modified_property="lastmodifieddate",
    properties=(
        "email", "firstname", "lastname", "createdate", "lastmodifieddate", "lifecyclestage",
        "hs_analytics_source", "country", "hs_object_id",
    ),
    stream=_hubspot_stream("contacts", "lastmodifieddate"),
)

HUBSPOT_OBJECTS = (HUBSPOT_CONTACTS,)

#: Landing sub-folder of each file-based stream.
FILE_STREAMS = {"email": (SENDGRID_EVENTS, "sendgrid"), "web": (SEGMENT_EVENTS, "segment")}

#: Every declared stream: each gets a raw table of the common shape.
ALL_STREAMS = (SENDGRID_EVENTS, SEGMENT_EVENTS, *(obj.stream for obj in HUBSPOT_OBJECTS))
