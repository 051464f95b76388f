"""The declared streams of every source. Adding a stream is adding a declaration here."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from touchpoint.sources.deal_stages import stage_date_properties
from touchpoint.sources.stream import InvalidRecord, Record, Stream
from touchpoint.sources.timeparse import from_iso, from_unix_millis_or_iso, from_unix_seconds


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
    identifiers=(("email", "$.email"),),
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
    identifiers=(
        ("segment_user", "$.userId"),
        ("segment_user", "$.previousId"),
        ("segment_anonymous", "$.anonymousId"),
        ("email", "$.traits.email"),
        ("email", "$.context.traits.email"),
    ),
)


# -- CRM: HubSpot CRM v3 objects -------------------------------------------------------------
@dataclass(frozen=True)
class HubSpotObject:
    """A HubSpot object type: what to fetch, which associations, and the stream it lands in."""

    object_type: str
    #: extraction group: the ingest DAG runs one task per group
    group: str
    properties: tuple[str, ...]
    associations: tuple[str, ...]
    modified_property: str
    stream: Stream


#: A contact's own identifiers; any other object names the contacts it is associated with.
_CONTACT_IDENTIFIERS = (("hubspot_contact", "$.id"), ("email", "$.properties.email"))
_ASSOCIATED_CONTACTS = (("hubspot_contact", "$.associations.contacts.results[*].id"),)


def _hubspot_stream(object_type: str, modified_property: str) -> Stream:
    def modified(record: Record):
        properties = record.get("properties") or {}
        if not isinstance(properties, dict):
            raise InvalidRecord(f"properties is a {type(properties).__name__}, not an object")
        if record.get("archived") is True:  # a deletion: one more version, at its time
            if record.get("archivedAt") is None:
                raise InvalidRecord("archived without archivedAt")
            return from_unix_millis_or_iso(record["archivedAt"])
        raw = properties.get(modified_property) or record.get("updatedAt")
        if raw is None:
            raise InvalidRecord(f"missing {modified_property} and updatedAt")
        return from_unix_millis_or_iso(raw)

    def key(record: Record) -> str:
        if not record.get("id") or isinstance(record["id"], dict | list | bool):
            raise InvalidRecord("missing id, or an id that is not a string or a number")
        # One row per version: the same object modified again is a new row, and so is its
        # deletion (read from the archive every run: the same key each time).
        deleted = "archived:" if record.get("archived") is True else ""
        return f"{record['id']}@{deleted}{modified(record).isoformat()}"

    return Stream(
        name=f"hubspot_{object_type}",
        table=f"raw.hubspot_{object_type}",
        source="crm",
        natural_key=key,
        event_time=modified,
        object_id=lambda record: str(record["id"]),
        identifiers=_CONTACT_IDENTIFIERS if object_type == "contacts" else _ASSOCIATED_CONTACTS,
    )


def hubspot_object(
    object_type: str,
    group: str,
    properties: tuple[str, ...],
    associations: tuple[str, ...] = (),
    modified_property: str = "hs_lastmodifieddate",
) -> HubSpotObject:
    return HubSpotObject(
        object_type,
        group,
        (*properties, modified_property),
        associations,
        modified_property,
        _hubspot_stream(object_type, modified_property),
    )


_ENGAGEMENT = ("hs_timestamp", "hubspot_owner_id", "hs_createdate")
_ENGAGEMENT_LINKS = ("contacts", "companies", "deals")

HUBSPOT_OBJECTS = (
    hubspot_object(
        "contacts",
        "people",
        (
            "email",
            "firstname",
            "lastname",
            "createdate",
            "lifecyclestage",
            "hs_analytics_source",
            "country",
            "hs_object_id",
            "hs_additional_emails",
            "hs_merged_object_ids",
            "hs_email_optout",
            "hs_legal_basis",
        ),
        ("companies",),
        modified_property="lastmodifieddate",
    ),
    hubspot_object("companies", "people", ("name", "domain", "industry", "createdate")),
    hubspot_object(
        "deals",
        "sales",
        (
            "dealname",
            "amount",
            "dealstage",
            "pipeline",
            "closedate",
            "dealtype",
            "createdate",
            "deal_currency_code",
            "hubspot_owner_id",
            "closed_lost_reason",
            # HubSpot's stage history: entered / exited per stage (var deal_pipeline_stages)
            *stage_date_properties(),
        ),
        ("contacts", "companies"),
    ),
    hubspot_object(
        "calls",
        "sales",
        (
            *_ENGAGEMENT,
            "hs_call_title",
            "hs_call_direction",
            "hs_call_duration",
            "hs_call_status",
            "hs_call_disposition",
        ),
        _ENGAGEMENT_LINKS,
    ),
    hubspot_object(
        "meetings",
        "sales",
        (
            *_ENGAGEMENT,
            "hs_meeting_title",
            "hs_meeting_outcome",
            "hs_meeting_location",
            "hs_activity_type",
            "hs_meeting_start_time",
            "hs_meeting_end_time",
        ),
        _ENGAGEMENT_LINKS,
    ),
    hubspot_object(
        "emails",
        "sales",
        (*_ENGAGEMENT, "hs_email_direction", "hs_email_subject", "hs_email_status"),
        _ENGAGEMENT_LINKS,
    ),
    hubspot_object("notes", "sales", (*_ENGAGEMENT, "hs_note_body"), _ENGAGEMENT_LINKS),
    hubspot_object(
        "tasks",
        "sales",
        (*_ENGAGEMENT, "hs_task_subject", "hs_task_status", "hs_task_type"),
        _ENGAGEMENT_LINKS,
    ),
    hubspot_object(
        "tickets",
        "service",
        (
            "subject",
            "content",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_category",
            "hs_ticket_priority",
            "createdate",
            "closed_date",
        ),
        ("contacts", "companies"),
    ),
    hubspot_object(
        "feedback_submissions",
        "service",
        (
            "hs_survey_type",
            "hs_survey_name",
            "hs_survey_channel",
            "hs_value",
            "hs_response_group",
            "hs_content",
            "hs_submission_timestamp",
            "hs_createdate",
        ),
        ("contacts",),
    ),
)
HUBSPOT_CONTACTS = HUBSPOT_OBJECTS[0]


# -- CRM: HubSpot Conversations v3 (the inbox: live chat, Messenger, email, WhatsApp) ----------
def _conversation_id(record: Record) -> str:
    if not record.get("id") or isinstance(record["id"], dict | list | bool):
        raise InvalidRecord("missing id, or an id that is not a string or a number")
    return str(record["id"])


def _thread_time(record: Record):
    if not record.get("latestMessageTimestamp"):
        raise InvalidRecord("missing latestMessageTimestamp")
    return from_unix_millis_or_iso(record["latestMessageTimestamp"])


def _message_time(record: Record):
    if not record.get("createdAt"):
        raise InvalidRecord("missing createdAt")
    return from_unix_millis_or_iso(record["createdAt"])


@dataclass(frozen=True)
class ConversationStreams:
    """The conversations inbox: threads listed by their latest message, and each listed
    thread's messages (the extractor attaches the thread's ``associatedContactId`` to them and
    leaves out their text: free text is never stored)."""

    group: str
    threads: Stream
    messages: Stream
    #: message fields not kept (free text)
    dropped_fields: tuple[str, ...] = ("text", "richText", "subject")


HUBSPOT_CONVERSATIONS = ConversationStreams(
    group="conversations",
    # a thread changes with every message (closing it is one): one row per latest message
    threads=Stream(
        name="hubspot_conversation_threads",
        table="raw.hubspot_conversation_threads",
        source="crm",
        natural_key=lambda r: f"{_conversation_id(r)}@{_thread_time(r).isoformat()}",
        event_time=_thread_time,
        object_id=_conversation_id,
        identifiers=(("hubspot_contact", "$.associatedContactId"),),
    ),
    # a message never changes: one row per message
    messages=Stream(
        name="hubspot_conversation_messages",
        table="raw.hubspot_conversation_messages",
        source="crm",
        natural_key=_conversation_id,
        event_time=_message_time,
        object_id=_conversation_id,
        identifiers=(
            ("hubspot_contact", "$.associatedContactId"),
            ("email", "$.senders[*].deliveryIdentifier.value"),
            ("email", "$.recipients[*].deliveryIdentifier.value"),
        ),
    ),
)
CRM_GROUPS = (
    *dict.fromkeys(obj.group for obj in HUBSPOT_OBJECTS),
    HUBSPOT_CONVERSATIONS.group,
)


def hubspot_objects(group: str | None = None) -> tuple[HubSpotObject, ...]:
    if group is not None and group not in CRM_GROUPS:
        raise ValueError(f"unknown CRM group {group!r}; expected one of {', '.join(CRM_GROUPS)}")
    return tuple(obj for obj in HUBSPOT_OBJECTS if group is None or obj.group == group)


#: Landing sub-folder of each file-based stream.
FILE_STREAMS = {"email": (SENDGRID_EVENTS, "sendgrid"), "web": (SEGMENT_EVENTS, "segment")}

#: What ``touchpoint extract`` and the ingest DAG extract: the CRM API and each file source.
SOURCES = ("crm", *FILE_STREAMS)

#: Every declared stream: each gets a raw table of the common shape.
ALL_STREAMS = (
    SENDGRID_EVENTS,
    SEGMENT_EVENTS,
    *(obj.stream for obj in HUBSPOT_OBJECTS),
    HUBSPOT_CONVERSATIONS.threads,
    HUBSPOT_CONVERSATIONS.messages,
)
