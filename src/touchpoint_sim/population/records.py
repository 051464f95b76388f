"""What a world is made of: people, companies, CRM records and their ids, and the world."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from touchpoint_sim.incidents import Incident
from touchpoint_sim.population.catalog import PLANS, TICKET_CATEGORIES, USER_AGENT

CRM_TYPES = (
    "contacts",
    "companies",
    "deals",
    "tickets",
    "calls",
    "meetings",
    "notes",
    "emails",
    "tasks",
    "feedback_submissions",
)
ENGAGEMENT_TYPES = ("calls", "meetings", "notes", "emails", "tasks")
#: Every association direction the simulator writes (the reverse directions are served too).
ASSOCIATION_PAIRS = (
    ("contacts", "companies"),
    ("deals", "contacts"),
    ("deals", "companies"),
    ("tickets", "contacts"),
    ("tickets", "companies"),
    ("feedback_submissions", "contacts"),
    *((kind, to) for kind in ENGAGEMENT_TYPES for to in ("contacts", "companies", "deals")),
)
ID_BASE = {
    "contacts": 5000,
    "companies": 7_000_000,
    "deals": 9_100_000,
    "tickets": 3_100_000,
    "feedback_submissions": 6_100_000,
    "engagements": 40_000_000_000,
    "merged": 800_000,
    "conversation_threads": 2_000_000_000,
}
#: CRM ids a person's objects take from (a block per person: what one person does never moves
#: another person's ids, so an incident leaves everyone else's CRM as it was)
ID_BLOCK = {"engagements": 100, "conversation_threads": 10}
ID_BLOCK_DEFAULT = 20

#: how much a support case of each category hurts satisfaction
_HURT = {c[0]: c[2] for c in TICKET_CATEGORIES}


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def created_property(object_type: str) -> str:
    return (
        "createdate"
        if object_type in ("contacts", "companies", "deals", "tickets")
        else "hs_createdate"
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CrmRecord:
    """A CRM object being lived: properties change over time; only changes before the end count."""

    __slots__ = ("_set_at", "created", "id", "modified", "person", "props", "type")

    def __init__(
        self,
        object_type: str,
        object_id: str,
        person: int,
        created: datetime,
        props: dict[str, Any],
    ) -> None:
        self.type, self.id, self.person, self.created, self.modified = (
            object_type,
            object_id,
            person,
            created,
            created,
        )
        self.props = {
            **props,
            created_property(object_type): iso(created),
            "hs_object_id": object_id,
        }
        self._set_at: dict[str, datetime] = {}

    def set(self, at: datetime, end: datetime, **props: Any) -> bool:
        """Change properties at ``at``; a change after the world's end has not happened yet."""
        if at >= end:
            return False
        for name, value in props.items():
            if self._set_at.get(name, self.created) <= at:
                self.props[name] = value
                self._set_at[name] = at
        self.modified = max(self.modified, at)
        return True

    def as_hubspot(self) -> dict[str, Any]:
        props = {
            k: (v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in self.props.items()
            if v is not None
        }
        props[created_property(self.type)] = iso(self.created)
        props[modified_property(self.type)] = iso(self.modified)
        return {
            "id": self.id,
            "properties": props,
            "createdAt": iso(self.created),
            "updatedAt": iso(self.modified),
            "archived": False,
        }


@dataclass
class Company:
    record: CrmRecord
    name: str
    domain: str
    industry: str
    contacts: list[CrmRecord] = field(default_factory=list)


@dataclass
class Person:
    index: int
    first: str
    last: str
    email: str
    anonymous_id: str
    user_id: str
    contact_id: str
    acquisition: tuple[str, str | None, str | None]
    arrived_at: datetime
    signs_up: bool
    #: the address used with sales and in email (the web sign-up uses ``email``)
    second_email: str | None = None
    country: str = "FR"
    user_agent: str = USER_AGENT
    ip: str = "203.0.113.1"
    #: the consent manager's record, when the visitor made a choice:
    #: {"analytics": .., "marketing": ..}
    consent: dict[str, bool] | None = None
    signed_up_at: datetime | None = None
    purchased_at: datetime | None = None
    newsletter: bool = False
    company: Company | None = None
    contact: CrmRecord | None = None
    merged_contact_ids: list[str] = field(default_factory=list)
    email_optout_at: datetime | None = None
    newsletter_paused: list[tuple[datetime, datetime]] = field(default_factory=list)
    #: when the address hard-bounced (later mail is dropped; earlier mail went out)
    bounced_at: datetime | None = None
    problem: str | None = None
    tickets: int = 0
    ticket_log: list[tuple[datetime, str]] = field(default_factory=list)
    survey_type: str | None = None
    satisfaction: int | None = None
    churned_at: datetime | None = None
    plan: tuple[str, int] = PLANS[0]
    #: (when, touchpoint, channel, ticket category) as the taxonomy classifies them; kept only
    #: while incidents are planted (they decide who "met" an incident's target)
    touches: list[tuple[datetime, str, str, str | None]] = field(default_factory=list)
    #: a purchase an incident stopped (``conversion=xF``)
    purchase_stopped: bool = False

    @property
    def crm_email(self) -> str:
        return self.second_email or self.email

    @property
    def marketing_ok(self) -> bool:
        return self.consent is None or self.consent["marketing"]

    def hurt_before(self, at: datetime) -> int:
        """How much the support cases opened before ``at`` weigh on satisfaction
        (TICKET_CATEGORIES)."""
        return sum(_HURT[category] for opened, category in self.ticket_log if opened < at)


@dataclass
class World:
    start: date
    weeks: int
    seed: int
    return_visits_per_week: float = 0.0
    people: list[Person] = field(default_factory=list)
    web_events: list[dict[str, Any]] = field(default_factory=list)
    email_events: list[dict[str, Any]] = field(default_factory=list)
    #: HubSpot objects by type, as the API serves them
    crm: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in CRM_TYPES})
    #: (from type, to type) -> {from id: [to ids]}
    associations: dict[tuple[str, str], dict[str, list[str]]] = field(
        default_factory=lambda: {pair: {} for pair in ASSOCIATION_PAIRS}
    )
    #: (source, natural id, person index)
    truth: list[tuple[str, str, int]] = field(default_factory=list)
    incidents: tuple[Incident, ...] = ()
    #: what each incident changed: (incident, effect, object type, natural id, person index)
    incident_truth: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    #: (object type, id) of the CRM objects deleted (population.deletions)
    deleted: list[tuple[str, str]] = field(default_factory=list)
    #: the conversations inbox (population.conversations): threads as the API serves them at
    #: the end, and each thread's messages in order
    conversation_threads: list[dict[str, Any]] = field(default_factory=list)
    conversation_messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def contacts(self) -> list[dict[str, Any]]:
        return self.crm["contacts"]

    @property
    def end(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), UTC) + timedelta(weeks=self.weeks)

    def keep_only(self, kept_web: list, kept_mail: list, dropped: set[str]) -> None:
        """Replace the world's events by the kept ones and forget the dropped ids in the truth
        (nothing to do when nothing was dropped)."""
        if dropped:
            self.web_events[:] = kept_web
            self.email_events[:] = kept_mail
            self.truth[:] = [row for row in self.truth if row[1] not in dropped]
