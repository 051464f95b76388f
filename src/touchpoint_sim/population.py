"""A seeded population of customers living journeys across web, email and CRM.

Same seed, same arguments: byte-for-byte the same world (seeded RNGs, no wall clock). Every
event and CRM object carries the index of the person who produced it, written out as ground
truth for tests.

The world is steady: people arrive over its whole span, at a rate that varies a little from
week to week (:data:`WEEK_NOISE`), less at weekends and at night (:data:`WEEKDAY_WEIGHTS`,
:data:`HOUR_WEIGHTS`). What follows an arrival lags it (a purchase by days to weeks, the answers
and support cases after it by days more), so the first three weeks are a warm-up. Each person
lives from random streams of their own and takes CRM ids from a block of their own, so that a
planted incident (:mod:`touchpoint_sim.incidents`) changes only what the people it touches do
from its week on: the weeks before it are those of the world without it.

What a person can live through, in order:

* awareness: an anonymous first visit, from search, ads (UTM cpc/display/paid_social), social,
  referrals or a partner newsletter; consent choices recorded by the site's consent manager
  (``context.consent.categoryPreferences``) for some visitors;
* consideration: product, pricing, review and search pages, recommendation clicks, live chats,
  webinars;
* sign-up: ``Signed Up`` or ``Form Submitted``, ``identify`` (plus the odd ``alias`` and
  ``group``), and a HubSpot contact; some people use one address on the web and another with
  sales (``hs_additional_emails``), a few were entered twice and merged (``hs_merged_object_ids``);
  some opt out of marketing email;
* purchase: self-serve checkout (``Checkout Started``, ``Order Completed``) or a sales process
  (calls, tasks, notes, 1:1 emails, a sales meeting, a deal through the pipeline);
* onboarding and service: order confirmation and shipping emails, onboarding meetings, support
  tickets whose category recurs, in-store visits;
* loyalty: a post-purchase survey email and its NPS or CSAT answer, renewals and upsells
  (``existingbusiness`` deals), newsletters; dissatisfied customers churn: no more visits or
  opens, and some unsubscribe.

Subscriptions renew every :data:`RENEWAL_DAYS` days, so short simulated periods still show
renewals. Changes that would happen after the world's end have not happened yet: the CRM holds
each object's state at the end, as HubSpot's API only serves the current version.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from touchpoint_sim.incidents import (
    CONVERSION_LOOKBACK_DAYS,
    FEEDBACK_LOOKBACK_DAYS,
    Incident,
    check_incidents,
)

FIRST_NAMES = ("ana", "ben", "chloe", "david", "emma", "farid", "grace", "hugo", "ines", "jules",
               "karin", "liam", "maya", "noah", "olga", "paul", "quinn", "rosa", "sami", "tara")
LAST_NAMES = ("martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand",
              "leroy", "moreau", "simon", "laurent", "lefebvre", "michel", "garcia", "david")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
COUNTRIES = ("FR", "DE", "GB", "US", "ES")
STORES = {"FR": ("Store - Lyon", "Store - Paris"), "DE": ("Store - Berlin",), "GB": ("Store - London",),
          "US": ("Store - New York",), "ES": ("Store - Madrid",)}

#: (hubspot original source, utm medium, utm source, utm campaign, referrer, weight)
ACQUISITION = (
    ("ORGANIC_SEARCH", None, None, None, "https://www.google.com/", 0.30),
    ("PAID_SEARCH", "cpc", "google", "brand_search", "https://www.google.com/", 0.17),
    ("OTHER_CAMPAIGNS", "display", "criteo", "retargeting_q4", "", 0.08),
    ("PAID_SOCIAL", "paid_social", "facebook", "autumn_sale", "https://l.facebook.com/", 0.10),
    ("SOCIAL_MEDIA", None, None, None, "https://www.instagram.com/", 0.07),
    ("REFERRALS", None, None, None, "https://www.trustpilot.com/", 0.08),
    ("EMAIL_MARKETING", "email", "partner_newsletter", "partner_oct", "", 0.06),
    ("DIRECT_TRAFFIC", None, None, None, "", 0.14),
)
PRODUCTS = (  # (product id, sku, name, slug, price)
    ("prod_101", "HUB-MINI", "Hub Mini", "hub-mini", 49.0),
    ("prod_102", "HUB-PRO", "Hub Pro", "hub-pro", 129.0),
    ("prod_103", "SENS-4", "Sensor Pack", "sensor-pack", 79.0),
    ("prod_104", "PLUG-2", "Smart Plug Duo", "smart-plug-duo", 39.0),
    ("prod_105", "CAM-360", "Camera 360", "camera-360", 159.0),
)
PLANS = (("Starter", 290), ("Pro", 990), ("Business", 2490))
RESEARCH_PAGES = ("/product", "/product/features", "/product/integrations", "/pricing", "/reviews", "/search")
HELP_PAGES = {"BILLING_ISSUE": "/help/billing", "DELIVERY_ISSUE": "/help/delivery",
              "PRODUCT_ISSUE": "/help/troubleshooting", "GENERAL_INQUIRY": "/help/account",
              "FEATURE_REQUEST": "/help"}
TICKET_CATEGORIES = (  # (category, weight, how much a case hurts satisfaction)
    ("DELIVERY_ISSUE", 0.30, 2), ("PRODUCT_ISSUE", 0.30, 2), ("BILLING_ISSUE", 0.20, 2),
    ("GENERAL_INQUIRY", 0.14, 0), ("FEATURE_REQUEST", 0.06, 0),
)
TICKET_SUBJECTS = {
    "DELIVERY_ISSUE": ("Parcel not delivered", "Package arrived damaged", "Delivery later than promised"),
    "PRODUCT_ISSUE": ("Hub stops syncing", "App crashes at login", "Sensor arrived defective"),
    "BILLING_ISSUE": ("Charged twice for my order", "Invoice shows the wrong VAT number", "Refund not received"),
    "GENERAL_INQUIRY": ("How do I change my plan?", "Question about my account", "Where is my invoice?"),
    "FEATURE_REQUEST": ("Please add CSV export", "Dark mode for the app", "Support for more sensors"),
}
SALES_REPS = ("61000001", "61000002", "61000003")
SUCCESS_MANAGERS = ("61000011", "61000012")
SUPPORT_AGENTS = ("61000021", "61000022", "61000023")
STORE_STAFF = ("61000031", "61000032")
CALL_DISPOSITIONS = {  # HubSpot's default call outcome ids
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "left_voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
}
LEGAL_BASIS = ("Legitimate interest – prospect/lead", "Freely given consent from contact",
               "Performance of a contract")
LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
             "evangelist")
COMPANY_WORDS = (("Blue", "North", "Bright", "Silver", "Green", "Red", "Nova", "Alpine", "Coastal", "Urban"),
                 ("Harbor", "Peak", "Field", "Stone", "River", "Oak", "Wave", "Ridge", "Forge", "Lane"),
                 ("Logistics", "Studio", "Foods", "Labs", "Retail", "Partners", "Energy", "Health", "Travel"))
INDUSTRIES = ("RETAIL", "COMPUTER_SOFTWARE", "LOGISTICS_AND_SUPPLY_CHAIN", "FOOD_PRODUCTION",
              "HOSPITAL_HEALTH_CARE", "CONSTRUCTION", "HOSPITALITY", "MARKETING_AND_ADVERTISING")
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
)
USER_AGENT = USER_AGENTS[0]
SITE = "https://www.touchpoint-shop.example"
NEWSLETTER_GROUP = 4242  # SendGrid unsubscribe group (ASM) of the newsletter
RENEWAL_DAYS = 14
RECOMMENDATION_LIST = "recommended_for_you"

CRM_TYPES = ("contacts", "companies", "deals", "tickets", "calls", "meetings", "notes", "emails", "tasks",
             "feedback_submissions")
ENGAGEMENT_TYPES = ("calls", "meetings", "notes", "emails", "tasks")
#: Every association direction the simulator writes (the reverse directions are served too).
ASSOCIATION_PAIRS = (
    ("contacts", "companies"), ("deals", "contacts"), ("deals", "companies"),
    ("tickets", "contacts"), ("tickets", "companies"), ("feedback_submissions", "contacts"),
    *((kind, to) for kind in ENGAGEMENT_TYPES for to in ("contacts", "companies", "deals")),
)
_ID_BASE = {"contacts": 5000, "companies": 7_000_000, "deals": 9_100_000, "tickets": 3_100_000,
            "feedback_submissions": 6_100_000, "engagements": 40_000_000_000, "merged": 800_000}
#: CRM ids a person's objects take from (a block per person: what one person does never moves
#: another person's ids, so an incident leaves everyone else's CRM as it was)
_ID_BLOCK = {"engagements": 100}
_ID_BLOCK_DEFAULT = 20

#: Arrivals: relative weight of each weekday (Monday first) and of each UTC hour
WEEKDAY_WEIGHTS = (1.0, 1.05, 1.05, 1.0, 0.9, 0.65, 0.6)
HOUR_WEIGHTS = (0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.1, 1.3, 1.4,
                1.4, 1.3, 1.1, 1.0, 1.0, 1.05, 1.15, 1.3, 1.4, 1.35, 1.0, 0.6)
#: week-to-week spread of the arrival rate (the log of a week's multiplier is normal, this sd)
WEEK_NOISE = 0.08
#: web pages that are not browsing: an engagement incident keeps them (they are conversions,
#: sign-ups and forms, whose counts other signals read)
_NOT_BROWSING = ("/signup", "/checkout", "/newsletter", "/contact-sales")
_EMAIL_TOUCHPOINTS = {"newsletter": "newsletter", "order_confirmation": "order_confirmation",
                      "shipping": "delivery_packaging", "renewal": "renewals_subscriptions",
                      "survey": "post_purchase_survey"}
_TICKET_TOUCHPOINTS = {"DELIVERY_ISSUE": "delivery_packaging", "PRODUCT_ISSUE": "product_quality",
                       "BILLING_ISSUE": "billing_pricing"}


def modified_property(object_type: str) -> str:
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def created_property(object_type: str) -> str:
    return "createdate" if object_type in ("contacts", "companies", "deals", "tickets") else "hs_createdate"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CrmRecord:
    """A CRM object being lived: properties change over time; only changes before the end count."""

    __slots__ = ("_set_at", "created", "id", "modified", "person", "props", "type")

    def __init__(self, object_type: str, object_id: str, person: int, created: datetime,
                 props: dict[str, Any]) -> None:
        self.type, self.id, self.person, self.created, self.modified = object_type, object_id, person, created, created
        self.props = {**props, created_property(object_type): _iso(created), "hs_object_id": object_id}
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
        props = {k: (v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v))
                 for k, v in self.props.items() if v is not None}
        props[created_property(self.type)] = _iso(self.created)
        props[modified_property(self.type)] = _iso(self.modified)
        return {"id": self.id, "properties": props, "createdAt": _iso(self.created),
                "updatedAt": _iso(self.modified), "archived": False}


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
    #: the consent manager's record, when the visitor made a choice: {"analytics": .., "marketing": ..}
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
        default_factory=lambda: {pair: {} for pair in ASSOCIATION_PAIRS})
    #: (source, natural id, person index)
    truth: list[tuple[str, str, int]] = field(default_factory=list)
    incidents: tuple[Incident, ...] = ()
    #: what each incident changed: (incident, effect, object type, natural id, person index)
    incident_truth: list[tuple[str, str, str, str, int]] = field(default_factory=list)

    @property
    def contacts(self) -> list[dict[str, Any]]:
        return self.crm["contacts"]

    @property
    def end(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), UTC) + timedelta(weeks=self.weeks)


@dataclass
class _Sent:
    message_id: str
    delivered: bool
    opened_at: datetime | None = None
    clicked_at: datetime | None = None


class _Builder:
    def __init__(self, customers: int, weeks: int, seed: int, start: date,
                 return_visits_per_week: float = 0.0, first_index: int = 0,
                 incidents: tuple[Incident, ...] = ()) -> None:
        # The people themselves (names, arrival, acquisition...) come from one stream; a slice
        # of a larger population (first_index > 0) has its own. What a person then lives draws
        # from that person's own stream (see build()).
        self.seed = seed
        self.main = self.rng = random.Random(seed if first_index == 0 else f"{seed}:{first_index}")
        self.first_index = first_index
        self.return_visits_per_week = return_visits_per_week
        self.world = World(start=start, weeks=weeks, seed=seed, return_visits_per_week=return_visits_per_week,
                           incidents=tuple(incidents))
        self.customers = customers
        self.t0 = datetime.combine(start, datetime.min.time(), UTC)
        self.end = self.world.end
        self.records: dict[str, list[CrmRecord]] = {t: [] for t in CRM_TYPES}
        self.companies: list[Company] = []
        # Companies are made with the people (main stream): slices keep rooms of their own.
        self._company_ids = _ID_BASE["companies"] + first_index * _ID_BLOCK_DEFAULT
        self._used: dict[tuple[str, int], int] = {}
        self._names: set[str] = set()
        # Arrivals: a noisy rate per week (the same for every slice of a world), a weekly and a
        # daily shape; one cumulative weight per (week, day) and per hour.
        weeks_rng = random.Random(f"{seed}:weeks")
        week_rate = [math.exp(weeks_rng.gauss(0, WEEK_NOISE)) for _ in range(weeks)]
        self._day_cum = list(_accumulate(rate * w for rate in week_rate for w in WEEKDAY_WEIGHTS))
        self._hour_cum = list(_accumulate(HOUR_WEIGHTS))
        self.incidents = tuple(incidents)
        self.tracking = bool(self.incidents)
        self._incident_rngs: dict[int, random.Random] = {}

    # -- primitives ----------------------------------------------------------------------
    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hexid(self, n: int = 22) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def moment(self, lo: datetime, hi: datetime) -> datetime:
        """A random moment in [lo, hi), never past the world's end."""
        hi = min(hi, self.end - timedelta(minutes=1))
        if hi <= lo:
            return lo
        at = lo + timedelta(seconds=self.rng.uniform(0, (hi - lo).total_seconds()))
        return at.replace(microsecond=(at.microsecond // 1000) * 1000)

    def later(self, at: datetime, lo: timedelta, hi: timedelta) -> datetime:
        """A moment between lo and hi after ``at`` (may fall after the end: then it has not happened)."""
        moved = at + lo + timedelta(seconds=self.rng.uniform(0, (hi - lo).total_seconds()))
        return moved.replace(microsecond=(moved.microsecond // 1000) * 1000)

    def office(self, at: datetime) -> datetime:
        """The next working moment (Mon-Fri, 08:00-18:00 UTC) at or after ``at``: when staff act."""
        while at.weekday() >= 5 or at.hour >= 18 or at.hour < 8:
            if at.weekday() >= 5 or at.hour >= 18:
                at = (at + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
            else:
                at = at.replace(hour=8, minute=0, second=0, microsecond=0)
            at += timedelta(minutes=self.rng.randint(0, 90))
        return at

    def live(self, at: datetime) -> bool:
        return at < self.end

    # -- CRM ------------------------------------------------------------------------------
    def next_id(self, object_type: str, person: int) -> str:
        """The next id in the person's own block of ids for this type (slices never collide)."""
        key = "engagements" if object_type in ENGAGEMENT_TYPES else object_type
        block = _ID_BLOCK.get(key, _ID_BLOCK_DEFAULT)
        used = self._used[(key, person)] = self._used.get((key, person), 0) + 1
        if used > block:
            raise RuntimeError(f"person {person} made more than {block} CRM {key}: the id block is full")
        return str(_ID_BASE[key] + person * block + used)

    def record(self, object_type: str, person: Person, created: datetime, props: dict[str, Any],
               object_id: str | None = None) -> CrmRecord:
        rec = CrmRecord(object_type, object_id or self.next_id(object_type, person.index), person.index, created,
                        props)
        self.records[object_type].append(rec)
        if self.tracking and object_type in ("tickets", "feedback_submissions", "contacts"):
            if object_type == "tickets":
                category = props["hs_ticket_category"]
                self.touch(person, created, _TICKET_TOUCHPOINTS.get(category, "customer_support"), "support",
                           category)
            elif object_type == "contacts":
                self.touch(person, created, "initial_contact", "web_form")
            else:
                self.touch(person, created, "post_purchase_survey", "survey")
        return rec

    def touch(self, p: Person, at: datetime, touchpoint: str, channel: str, category: str | None = None) -> None:
        p.touches.append((at, touchpoint, channel, category))

    def has_met(self, p: Person, incident: Incident, lo: datetime, hi: datetime) -> bool:
        """Whether the person met the incident's target in [lo, hi)."""
        return any(lo <= at < hi and incident.met(tp, ch, cat) for at, tp, ch, cat in p.touches)

    def incident_rng(self, p: Person) -> random.Random:
        """The person's draws for incidents: their own stream of what happens is not moved."""
        rng = self._incident_rngs.get(p.index)
        if rng is None:
            rng = self._incident_rngs[p.index] = random.Random(f"{self.seed}:incident:{p.index}")
        return rng

    def link(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        targets = self.world.associations[(from_type, to_type)].setdefault(from_id, [])
        if to_id not in targets:
            targets.append(to_id)

    def engage(self, kind: str, p: Person, at: datetime, props: dict[str, Any], owner: str,
               deal: CrmRecord | None = None, created: datetime | None = None) -> CrmRecord | None:
        """An engagement (call, meeting, note, email, task) on the person's contact."""
        created = created or at
        if p.contact is None or not self.live(created) or created < p.contact.created:
            return None
        rec = self.record(kind, p, created, {"hs_timestamp": _iso(at), **props, "hubspot_owner_id": owner})
        self.link(kind, rec.id, "contacts", p.contact.id)
        if self.tracking and kind == "calls":
            inbound = props["hs_call_direction"] == "INBOUND"
            self.touch(p, at, "customer_support" if inbound else "sales_interaction", "phone")
        elif self.tracking and kind == "emails":
            self.touch(p, at, "email_exchange", "email")
        if p.company:
            self.link(kind, rec.id, "companies", p.company.record.id)
        if deal is not None:
            self.link(kind, rec.id, "deals", deal.id)
        return rec

    def stage(self, p: Person, at: datetime, lifecycle: str) -> None:
        """Move the contact forward in the lifecycle (HubSpot does not move it back)."""
        if p.contact is None:
            return
        if LIFECYCLE.index(lifecycle) > LIFECYCLE.index(p.contact.props["lifecyclestage"]):
            p.contact.set(at, self.end, lifecyclestage=lifecycle)

    def call(self, p: Person, at: datetime, title: str, direction: str, owner: str, deal=None,
             outcome: str = "connected") -> CrmRecord | None:
        duration = (self.rng.randint(120, 1500) if outcome == "connected" else self.rng.randint(5, 40)) * 1000
        status = {"connected": "COMPLETED", "left_voicemail": "COMPLETED", "no_answer": "NO_ANSWER",
                  "busy": "BUSY"}[outcome]
        rec = self.engage("calls", p, at, {
            "hs_call_title": title, "hs_call_direction": direction, "hs_call_duration": duration,
            "hs_call_status": status, "hs_call_disposition": CALL_DISPOSITIONS[outcome],
        }, owner, deal, created=at + timedelta(milliseconds=duration) + timedelta(seconds=self.rng.randint(5, 300)))
        if rec is not None and outcome == "connected" and self.rng.random() < 0.2:  # notes added later
            rec.set(self.later(rec.created, timedelta(minutes=5), timedelta(days=2)), self.end,
                    hs_call_body=f"<p>{title}: discussed needs and next steps.</p>")
        return rec

    def meeting(self, p: Person, booked: datetime, start: datetime, title: str, activity: str, location: str,
                owner: str, deal=None, show: float = 0.85, cancel: float = 0.07) -> tuple[CrmRecord | None, bool]:
        """Book a meeting; it happens (or not) at ``start``. Returns the record and whether it took place."""
        minutes = self.rng.choice((30, 45, 60))
        finish = start + timedelta(minutes=minutes)
        rec = self.engage("meetings", p, start, {
            "hs_meeting_title": title, "hs_meeting_outcome": "SCHEDULED", "hs_meeting_location": location,
            "hs_activity_type": activity, "hs_meeting_start_time": _iso(start), "hs_meeting_end_time": _iso(finish),
        }, owner, deal, created=booked)
        if rec is None:
            return None, False
        roll = self.rng.random()
        if roll < cancel:
            rec.set(self.moment(booked, start), self.end, hs_meeting_outcome="CANCELED")
            return rec, False
        outcome = "COMPLETED" if roll < cancel + show else "NO_SHOW"
        if rec.set(finish + timedelta(minutes=self.rng.randint(1, 120)), self.end, hs_meeting_outcome=outcome) \
                and self.tracking and outcome == "COMPLETED":
            self.touch(p, start, *(("in_store_experience", "store") if activity == "In-store visit" else
                                   ("onboarding", "meeting") if activity == "Onboarding" else
                                   ("sales_interaction", "meeting")))
        return rec, outcome == "COMPLETED" and self.live(finish)

    def note(self, p: Person, at: datetime, body: str, owner: str, deal=None) -> None:
        rec = self.engage("notes", p, at, {"hs_note_body": f"<p>{body}</p>"}, owner, deal)
        if rec is not None and self.rng.random() < 0.15:  # edited later
            rec.set(self.later(at, timedelta(minutes=10), timedelta(days=3)), self.end,
                    hs_note_body=f"<p>{body}</p><p>Update: followed up as agreed.</p>")

    def crm_email(self, p: Person, at: datetime, subject: str, owner: str, deal=None, reply: float = 0.0) -> None:
        self.engage("emails", p, at, {"hs_email_direction": "EMAIL", "hs_email_subject": subject,
                                      "hs_email_status": "SENT"}, owner, deal)
        if self.rng.random() < reply:
            answer = self.later(at, timedelta(hours=1), timedelta(days=2))
            self.engage("emails", p, answer, {"hs_email_direction": "INCOMING_EMAIL",
                                              "hs_email_subject": f"RE: {subject}", "hs_email_status": "SENT"},
                        owner, deal)

    def task(self, p: Person, at: datetime, subject: str, kind: str, owner: str, done_at: datetime | None,
             deal=None) -> None:
        rec = self.engage("tasks", p, at, {"hs_task_subject": subject, "hs_task_status": "NOT_STARTED",
                                           "hs_task_type": kind, "hs_task_priority": "MEDIUM"}, owner, deal)
        if rec is not None:
            rec.props["hs_timestamp"] = _iso(at + timedelta(days=1))  # the due date
            if done_at is not None:
                rec.set(done_at, self.end, hs_task_status="COMPLETED")

    def deal(self, p: Person, created: datetime, name: str, amount: int, dealtype: str, stage: str,
             owner: str) -> CrmRecord | None:
        if p.contact is None or not self.live(created):
            return None
        rec = self.record("deals", p, created, {
            "dealname": name, "amount": amount, "dealstage": stage, "pipeline": "default",
            "closedate": _iso(created + timedelta(days=21)), "dealtype": dealtype, "hubspot_owner_id": owner,
        })
        self.link("deals", rec.id, "contacts", p.contact.id)
        if p.company:
            self.link("deals", rec.id, "companies", p.company.record.id)
        if self.tracking:
            self.touch(p, created, "sales_interaction", "sales")
        return rec

    def close(self, deal: CrmRecord, at: datetime, won: bool, reason: str | None = None,
              p: Person | None = None) -> bool:
        props: dict[str, Any] = {"dealstage": "closedwon" if won else "closedlost", "closedate": _iso(at)}
        if reason:
            props["closed_lost_reason"] = reason
        done = deal.set(at, self.end, **props)
        if done and won and self.tracking and p is not None:
            name = deal.props["dealname"]
            self.touch(p, at, "upgrade" if name.startswith("Upsell") else
                       "renewals_subscriptions" if deal.props["dealtype"] == "existingbusiness" else "purchase", "sales")
        return done

    # -- web (Segment) ----------------------------------------------------------------------
    def web(self, p: Person, at: datetime, kind: str, page: str | None = None, **fields: Any) -> dict | None:
        if not self.live(at) or (p.churned_at is not None and at >= p.churned_at):
            return None
        sent = at + timedelta(milliseconds=self.rng.randint(5, 900))
        received = sent + timedelta(milliseconds=self.rng.randint(20, 400))
        context: dict[str, Any] = {
            "userAgent": p.user_agent, "ip": p.ip, "locale": {"FR": "fr-FR", "DE": "de-DE", "ES": "es-ES",
                                                               "GB": "en-GB", "US": "en-US"}[p.country],
            "library": {"name": "analytics.js", "version": "5.2.0"},
        }
        if page is not None:
            context["page"] = {"path": page.split("?")[0], "url": SITE + page, "title": _title(page),
                               "referrer": "", "search": "?" + page.split("?")[1] if "?" in page else ""}
        if p.consent is not None:
            context["consent"] = {"categoryPreferences": dict(p.consent)}
        event: dict[str, Any] = {"type": kind, "messageId": f"ajs-{self.uid()}", "anonymousId": p.anonymous_id}
        if p.signed_up_at is not None and at >= p.signed_up_at:
            event["userId"] = p.user_id
        extra_context = fields.pop("context", None)
        if extra_context:
            context.update(extra_context)
        event.update(fields)
        event.update({"context": context, "timestamp": _iso(at), "originalTimestamp": _iso(at),
                      "sentAt": _iso(sent), "receivedAt": _iso(received), "version": 2})
        self.world.web_events.append(event)
        self.world.truth.append(("segment", event["messageId"], p.index))
        if self.tracking:
            touch = _web_touch(event)
            if touch is not None:
                self.touch(p, at, *touch)
        return event

    def page(self, p: Person, at: datetime, path: str, campaign: dict | None = None, referrer: str = "") -> None:
        if campaign:
            path += ("&" if "?" in path else "?") + "&".join(
                f"utm_{k}={v}" for k, v in (("source", campaign["source"]), ("medium", campaign["medium"]),
                                            ("campaign", campaign["name"])))
        extra: dict[str, Any] = {"campaign": campaign} if campaign else {}
        event = self.web(p, at, "page", path, name=_title(path),
                         properties={"path": path.split("?")[0], "url": SITE + path, "title": _title(path),
                                     "referrer": referrer}, context=extra)
        if event is not None:
            event["context"]["page"]["referrer"] = referrer

    def track(self, p: Person, at: datetime, name: str, properties: dict[str, Any], page: str | None = None) -> None:
        self.web(p, at, "track", page, event=name, properties=properties)

    def session(self, p: Person, at: datetime, pages: list[str], campaign: dict | None = None,
                referrer: str = "") -> datetime:
        """A visit: pages a few seconds to minutes apart; returns when it ended."""
        for n, path in enumerate(pages):
            self.page(p, at, path, campaign if n == 0 else None, referrer if n == 0 else SITE + pages[n - 1])
            at = self.later(at, timedelta(seconds=8), timedelta(seconds=150))
        return at

    def research_pages(self, count: int) -> list[str]:
        pages = []
        for _ in range(count):
            path = self.rng.choice(RESEARCH_PAGES)
            if path in ("/product", "/reviews") and self.rng.random() < 0.5:
                path += "/" + self.rng.choice(PRODUCTS)[3]
            elif path == "/search":
                path += "?q=" + self.rng.choice(("hub", "sensor", "camera", "plug"))
            pages.append(path)
        return pages

    def recommendation(self, p: Person, at: datetime) -> datetime:
        """A visit where the person clicks a personalised recommendation."""
        at = self.session(p, at, ["/"])
        product = self.rng.choice(PRODUCTS)
        self.track(p, at, "Product Clicked", {
            "product_id": product[0], "sku": product[1], "name": product[2], "price": product[4],
            "position": self.rng.randint(1, 6), "list_id": RECOMMENDATION_LIST,
            "list_name": "Recommended for you"}, "/")
        return self.session(p, self.later(at, timedelta(seconds=1), timedelta(seconds=4)),
                            [f"/product/{product[3]}"], referrer=SITE + "/")

    def live_chat(self, p: Person, at: datetime, topic: str, page: str) -> None:
        self.track(p, at, "Live Chat Started", {"chat_id": "chat_" + self.hexid(12), "topic": topic}, page)

    def webinar(self, p: Person, at: datetime) -> None:
        """Register for the next webinar (Thursdays 16:00 UTC) and maybe attend it."""
        thursday = (at + timedelta(days=(3 - at.weekday()) % 7)).replace(hour=16, minute=0, second=0, microsecond=0)
        if thursday <= at:
            thursday += timedelta(weeks=1)
        webinar_id = f"web_{thursday:%Y%m%d}"
        name = self.rng.choice(("Getting started with your smart home", "Automations that save energy",
                                "What's new this month"))
        self.page(p, at - timedelta(seconds=40), "/webinars")
        self.track(p, at, "Webinar Registered", {"webinar_id": webinar_id, "webinar_name": name}, "/webinars")
        if self.rng.random() < 0.6:
            self.track(p, thursday + timedelta(minutes=self.rng.randint(0, 8)), "Webinar Attended",
                       {"webinar_id": webinar_id, "webinar_name": name, "duration_minutes": self.rng.randint(10, 55)})
            self.stage(p, thursday + timedelta(hours=2), "marketingqualifiedlead")

    # -- email (SendGrid) -------------------------------------------------------------------
    def email(self, p: Person, at: datetime, category: str, opens: float, clicks: float = 0.3,
              unique: dict[str, Any] | None = None, url: str = SITE + "/product",
              group: int | None = None) -> _Sent | None:
        if not self.live(at):
            return None
        message_id = self.hexid(22)
        smtp_id = f"<{message_id}@ismtpd0001p1lon1.sendgrid.net>"
        # SendGrid sends `category` as a string for one category, an array for several.
        cat: Any = category if self.rng.random() < 0.5 else [category, "touchpoint"]
        base: dict[str, Any] = {"email": p.crm_email, "sg_message_id": f"{message_id}.filter0001",
                                "smtp-id": smtp_id, "category": cat}
        if group is not None:
            base["asm_group_id"] = group
        base.update(unique or {})  # unique arguments arrive as top-level keys
        ts = int(at.timestamp())
        sent = _Sent(message_id, delivered=False)
        bounced = p.bounced_at is not None and p.bounced_at <= at
        if bounced or self.rng.random() < 0.015:
            reason = "Bounced Address" if bounced else "Invalid SMTPAPI header"
            self._emit(p, {**base, "event": "dropped", "reason": reason, "timestamp": ts}, with_id=False)
            return sent
        self._emit(p, {**base, "event": "processed", "timestamp": ts})
        if self.rng.random() < 0.03:
            self._emit(p, {**base, "event": "deferred", "response": "421 4.7.0 Try again later", "attempt": "1",
                           "timestamp": ts + 1})
            ts += self.rng.randint(300, 1800)
        if self.rng.random() < 0.02:
            p.bounced_at = at if p.bounced_at is None else min(p.bounced_at, at)
            self._emit(p, {**base, "event": "bounce", "type": "bounce", "status": "5.1.1",
                           "reason": "550 5.1.1 The email account that you tried to reach does not exist",
                           "timestamp": ts + 3})
            return sent
        self._emit(p, {**base, "event": "delivered", "response": "250 2.0.0 OK", "timestamp": ts + 2})
        sent.delivered = True
        churned = p.churned_at is not None and at >= p.churned_at
        if not churned and self.rng.random() < opens:
            opened = self.later(at, timedelta(minutes=2), timedelta(hours=30))
            if self.live(opened):
                sent.opened_at = opened
                self._emit(p, {**base, "event": "open", "useragent": p.user_agent, "ip": p.ip,
                               "sg_machine_open": False, "timestamp": int(opened.timestamp())})
                if self.rng.random() < clicks:
                    sent.clicked_at = opened + timedelta(seconds=self.rng.randint(5, 120))
                    self._emit(p, {**base, "event": "click", "url": url, "url_offset": {"index": 0, "type": "html"},
                                   "useragent": p.user_agent, "ip": p.ip,
                                   "timestamp": int(sent.clicked_at.timestamp())})
        return sent

    def _emit(self, p: Person, event: dict[str, Any], with_id: bool = True) -> None:
        if with_id:
            event["sg_event_id"] = self.hexid(22)
        if event["timestamp"] >= int(self.end.timestamp()):
            return
        self.world.email_events.append(event)
        self.world.truth.append(("sendgrid", event.get("sg_event_id") or "", p.index))
        if self.tracking and event["event"] in ("delivered", "open", "click"):
            category = _email_category(event)
            if category in _EMAIL_TOUCHPOINTS:
                self.touch(p, datetime.fromtimestamp(event["timestamp"], UTC), _EMAIL_TOUCHPOINTS[category], "email")
        if self.rng.random() < 0.02:  # at-least-once delivery: the same event twice
            self.world.email_events.append(dict(event))

    def opt_out(self, p: Person, at: datetime) -> None:
        if p.email_optout_at is None and self.live(at):
            p.email_optout_at = at
            if p.contact is not None:
                p.contact.set(max(at, p.contact.created), self.end, hs_email_optout=True)

    def unsubscribe(self, p: Person, at: datetime, sent: _Sent, globally: bool) -> None:
        base = {"email": p.crm_email, "sg_message_id": f"{sent.message_id}.filter0001", "category": "newsletter",
                "timestamp": int(at.timestamp())}
        if globally:
            self._emit(p, {**base, "event": "unsubscribe"})
            self.opt_out(p, at)
        else:
            url = SITE + "/email/preferences"
            self._emit(p, {**base, "event": "group_unsubscribe", "asm_group_id": NEWSLETTER_GROUP,
                           "useragent": p.user_agent, "ip": p.ip, "url": url})
            back = self.later(at, timedelta(days=1), timedelta(days=6)) if self.rng.random() < 0.5 else None
            if back is not None and self.live(back) and (p.churned_at is None):
                self._emit(p, {**base, "event": "group_resubscribe", "asm_group_id": NEWSLETTER_GROUP,
                               "useragent": p.user_agent, "ip": p.ip, "url": url,
                               "timestamp": int(back.timestamp())})
                p.newsletter_paused.append((at, back))
            else:
                p.newsletter_paused.append((at, self.end))

    # -- the population ----------------------------------------------------------------------
    def build(self) -> World:
        people = [self.person(index) for index in range(self.first_index, self.first_index + self.customers)]
        self.world.people.extend(people)
        for person in people:
            # Each person lives from a stream of their own: what changes for one person (an
            # incident) never moves the draws of anyone else.
            self.rng = random.Random(f"{self.seed}:person:{person.index}")
            self.journey(person)
        self.more_cases()
        self.return_visits()
        self.lower_answers()
        self.less_engagement()
        self.after_churn()
        self.rng = random.Random(f"{self.seed}:finish" + (f":{self.first_index}" if self.first_index else ""))
        self.finish()
        self.world.web_events.sort(key=lambda e: e["timestamp"])
        self.world.email_events.sort(key=lambda e: e["timestamp"])
        return self.world

    def person(self, index: int) -> Person:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        acquisition = rng.choices(ACQUISITION, [a[5] for a in ACQUISITION])[0]
        arrived = self.arrival()
        email = f"{first}.{last}{index}@{rng.choice(DOMAINS)}"
        p = Person(
            index=index, first=first, last=last, email=email,
            anonymous_id=self.uid(), user_id=f"usr_{index:06d}", contact_id=str(_ID_BASE["contacts"] + 1 + index),
            acquisition=acquisition[:3], arrived_at=arrived, signs_up=rng.random() < 0.7,
            country=rng.choice(COUNTRIES), user_agent=rng.choice(USER_AGENTS),
            ip=f"203.0.113.{rng.randint(1, 254)}", plan=rng.choices(PLANS, (0.5, 0.35, 0.15))[0],
        )
        if rng.random() < 0.6:  # the visitor answered the consent banner
            p.consent = {"analytics": rng.random() < 0.92, "marketing": rng.random() < 0.7}
        if rng.random() < 0.35:  # buys for a business
            p.company = self.company_for(p)
        if rng.random() < 0.14:  # a second address: work (or another personal) email used with sales
            domain = p.company.domain if p.company else rng.choice(DOMAINS)
            p.second_email = f"{first[0]}{last}.{index}@{domain}"
        return p

    def arrival(self) -> datetime:
        """When a new person first visits: any day of the world, by the week's rate, the weekday
        and the hour (the world is steady: as many arrive in its last weeks as in its first)."""
        day = self.rng.choices(range(len(self._day_cum)), cum_weights=self._day_cum)[0]
        hour = self.rng.choices(range(24), cum_weights=self._hour_cum)[0]
        at = self.t0 + timedelta(days=day, hours=hour, seconds=self.rng.uniform(0, 3600))
        return min(at, self.end - timedelta(minutes=1)).replace(microsecond=(at.microsecond // 1000) * 1000)

    def company_for(self, p: Person) -> Company:
        if self.companies and self.rng.random() < 0.45:
            return self.rng.choice(self.companies)
        for attempt in range(50):
            name = " ".join(self.rng.choice(words) for words in COMPANY_WORDS)
            if name not in self._names:
                break
        else:  # a large population has used up the word combinations: number the name
            name = f"{name} {len(self._names) + 1}"
        self._names.add(name)
        domain = name.lower().replace(" ", "-") + ".example"
        industry = self.rng.choice(INDUSTRIES)
        # Created with its first contact (HubSpot creates companies from the email domain).
        self._company_ids += 1
        rec = CrmRecord("companies", str(self._company_ids), p.index, self.end, {
            "name": name, "domain": domain, "industry": industry, "country": p.country})
        company = Company(rec, name, domain, industry)
        self.companies.append(company)
        return company

    def journey(self, p: Person) -> None:
        rng = self.rng
        source, medium, utm_source = p.acquisition
        row = next(a for a in ACQUISITION if a[0] == source)
        campaign = {"source": utm_source, "medium": medium, "name": row[3]} if medium else None
        if campaign and medium == "cpc":
            campaign["term"] = rng.choice(("smart home hub", "home sensors", "wifi camera"))
        landing = rng.choice(("/", "/product", "/pricing", "/product/" + rng.choice(PRODUCTS)[3])) if campaign else "/"
        at = self.session(p, p.arrived_at, [landing, *self.research_pages(rng.randint(0, 3))], campaign, row[4])
        for _ in range(rng.randint(1, 3)):  # consideration: research visits over the next days
            at = self.later(at, timedelta(hours=1), timedelta(hours=rng.choice((4, 20, 48))))
            at = self.session(p, at, self.research_pages(rng.randint(1, 4)))
            if rng.random() < 0.1:
                at = self.recommendation(p, at)
            if rng.random() < 0.07:
                self.live_chat(p, at, "pre-sales", "/pricing")
        if not p.signs_up:
            if rng.random() < 0.2:  # met in a store: the CRM knows them, the web never will
                self.store_contact(p, self.office(self.later(at, timedelta(hours=2), timedelta(days=5))))
            return
        at = self.later(at, timedelta(minutes=5), timedelta(days=2))
        if not self.live(at):
            return
        form = self.signup(p, at)
        if rng.random() < 0.12:
            self.webinar(p, self.later(at, timedelta(hours=1), timedelta(days=4)))
        if rng.random() < 0.05:  # a question before buying: a general inquiry ticket
            self.tickets(p, self.later(at, timedelta(hours=3), timedelta(days=3)), "GENERAL_INQUIRY", 1)
        sales_led = rng.random() < (0.75 if form == "contact_sales" else 0.5 if p.company else 0.2)
        if sales_led:
            self.sales_process(p, at)
        elif form != "newsletter" or rng.random() < 0.3:
            self.self_serve(p, at)
        # What follows the purchase decision, the store visit and the newsletters draw from
        # streams of their own: a purchase an incident stopped changes what comes after it, not
        # the person's visits and newsletters of the weeks before it.
        self.rng = rng = random.Random(f"{self.seed}:person:{p.index}:after")
        if p.purchased_at is not None:
            self.after_purchase(p)
        elif rng.random() < 0.3 and not p.purchase_stopped:
            self.recommendation(p, self.later(at, timedelta(days=1), timedelta(days=8)))
        self.rng = rng = random.Random(f"{self.seed}:person:{p.index}:store")
        if rng.random() < 0.08:
            self.store_visit(p, self.office(self.later(at, timedelta(days=1), timedelta(days=12))))
        self.rng = random.Random(f"{self.seed}:person:{p.index}:newsletters")
        self.newsletters(p)

    def new_contact(self, p: Person, created: datetime, source: str, lifecycle: str, legal: str) -> CrmRecord:
        props: dict[str, Any] = {
            "email": p.crm_email, "firstname": p.first.title(), "lastname": p.last.title(),
            "lifecyclestage": lifecycle, "hs_analytics_source": source, "country": p.country,
            "hs_email_optout": False, "hs_legal_basis": legal,
        }
        if p.second_email:
            props["hs_additional_emails"] = p.email
        contact = self.record("contacts", p, created, props, object_id=p.contact_id)
        p.contact = contact
        if p.company:
            p.company.contacts.append(contact)
            self.link("contacts", contact.id, "companies", p.company.record.id)
        return contact

    def store_contact(self, p: Person, at: datetime) -> None:
        """Someone who never signs up online, entered by store staff during a visit."""
        if not self.live(at):
            return
        p.second_email = None
        self.new_contact(p, at, "OFFLINE", "lead", "Legitimate interest – prospect/lead")
        self.store_visit(p, at, booked=at)

    def store_visit(self, p: Person, at: datetime, booked: datetime | None = None) -> None:
        location = self.rng.choice(STORES[p.country])
        if booked is None and p.contact is not None:
            booked = max(self.later(at, -timedelta(days=3), -timedelta(hours=2)), p.contact.created + timedelta(minutes=1))
        self.meeting(p, booked or at, at,
                     f"Visit at {location.split(' - ')[1]}", "In-store visit", location,
                     self.rng.choice(STORE_STAFF), show=0.9, cancel=0.03)

    def signup(self, p: Person, at: datetime) -> str:
        rng = self.rng
        p.signed_up_at = at
        form = rng.choices(("account", "newsletter", "contact_sales"), (0.72, 0.12, 0.16))[0]
        page = "/signup" if form == "account" else "/newsletter" if form == "newsletter" else "/contact-sales"
        self.page(p, at - timedelta(seconds=20), page)  # anonymous until the form is sent
        if form == "account":
            self.track(p, at, "Signed Up", {"method": "email", "plan": p.plan[0].lower()}, page)
        else:
            self.track(p, at, "Form Submitted", {"form_id": f"form_{form}", "form_name": form.replace("_", " ").title()},
                       page)
        traits: dict[str, Any] = {"email": p.email, "firstName": p.first.title(), "lastName": p.last.title(),
                                  "createdAt": _iso(at)}
        if p.company:
            traits["company"] = {"name": p.company.name}
        self.web(p, at + timedelta(seconds=1), "identify", page, traits=traits)
        if rng.random() < 0.1:  # the site's old tracking code also aliases the anonymous id
            self.web(p, at + timedelta(seconds=2), "alias", page, previousId=p.anonymous_id)
        if p.company and rng.random() < 0.6:
            self.web(p, at + timedelta(seconds=3), "group", page, groupId=f"grp_{p.company.record.id}",
                     traits={"name": p.company.name, "industry": p.company.industry, "website": p.company.domain})
        p.newsletter = p.marketing_ok and (form == "newsletter" or rng.random() < 0.7)
        legal = "Freely given consent from contact" if p.newsletter else "Legitimate interest – prospect/lead"
        source = p.acquisition[0]
        contact = self.new_contact(p, at + timedelta(seconds=rng.randint(20, 90)), source,
                                   "subscriber" if form == "newsletter" else "lead", legal)
        if not p.marketing_ok and rng.random() < 0.5:  # opted out of all email at sign-up
            p.email_optout_at = contact.created
            contact.props["hs_email_optout"] = True
        if rng.random() < 0.3:  # edited later by sales (phone, job title...)
            contact.set(self.later(contact.created, timedelta(hours=1), timedelta(days=10)), self.end,
                        jobtitle=rng.choice(("Owner", "Office manager", "IT lead", "Buyer")))
        if p.second_email and rng.random() < 0.35:
            self.merged_duplicate(p, contact)
        if form == "contact_sales":
            self.stage(p, contact.created + timedelta(minutes=5), "marketingqualifiedlead")
        return form

    def merged_duplicate(self, p: Person, contact: CrmRecord) -> None:
        """Sales had entered the person under their other address; the two were merged."""
        merged_at = self.office(self.later(contact.created, timedelta(hours=2), timedelta(days=4)))
        if not self.live(merged_at):
            return
        duplicate = str(_ID_BASE["merged"] + p.index * _ID_BLOCK_DEFAULT + 1)
        p.merged_contact_ids.append(duplicate)
        contact.set(merged_at, self.end, hs_merged_object_ids=duplicate)
        # The call logged on the duplicate now hangs off the surviving contact.
        self.call(p, self.later(contact.created, timedelta(minutes=30), timedelta(hours=2)),
                  "Intro call", "OUTBOUND", self.rng.choice(SALES_REPS))

    # -- purchase -------------------------------------------------------------------------
    def self_serve(self, p: Person, at: datetime) -> None:
        rng = self.rng
        if rng.random() > 0.7:
            return
        at = self.later(at, timedelta(minutes=10), timedelta(days=rng.choice((0.5, 2, 5))))
        product = rng.choice(PRODUCTS)
        at = self.session(p, at, ["/pricing", f"/product/{product[3]}", "/checkout"])
        order_id = f"ord_{self.hexid(10)}"
        quantity = rng.randint(1, 3)
        revenue = round(product[4] * quantity, 2)
        item = {"product_id": product[0], "sku": product[1], "name": product[2], "price": product[4],
                "quantity": quantity}
        self.track(p, at, "Checkout Started", {"order_id": order_id, "value": revenue, "revenue": revenue,
                                               "currency": "EUR", "products": [item]}, "/checkout")
        if rng.random() < 0.25 or not self.live(at + timedelta(minutes=4)):  # abandoned cart
            return
        if self.purchase_blocked(p, at, "orders", order_id):  # abandoned too, because of an incident
            return
        done = self.later(at, timedelta(minutes=1), timedelta(minutes=6))
        self.track(p, done, "Order Completed", {"order_id": order_id, "total": revenue, "revenue": revenue,
                                                "tax": round(revenue * 0.2, 2), "shipping": 0.0,
                                                "currency": "EUR", "products": [item]}, "/checkout")
        p.purchased_at = done
        self.stage(p, done + timedelta(minutes=2), "customer")
        self.order_emails(p, done, order_id)

    def order_emails(self, p: Person, at: datetime, order_id: str) -> None:
        self.email(p, at + timedelta(minutes=1), "order_confirmation", opens=0.8, clicks=0.1,
                   unique={"order_id": order_id}, url=f"{SITE}/account/orders/{order_id}")
        shipped = self.later(at, timedelta(hours=18), timedelta(days=2))
        self.email(p, shipped, "shipping", opens=0.7, clicks=0.4, unique={"order_id": order_id, "stage": "shipped"},
                   url=f"https://tracking.carrier.example/{order_id}")
        self.email(p, self.later(shipped, timedelta(days=1), timedelta(days=3)), "shipping", opens=0.5, clicks=0.05,
                   unique={"order_id": order_id, "stage": "delivered"}, url=f"{SITE}/account/orders/{order_id}")

    def sales_process(self, p: Person, at: datetime) -> None:
        rng = self.rng
        rep = rng.choice(SALES_REPS)
        contact = p.contact
        assert contact is not None
        t = self.office(self.later(contact.created, timedelta(minutes=30), timedelta(hours=8)))
        self.stage(p, t, "marketingqualifiedlead")
        connected_at = None
        for attempt in range(rng.randint(1, 3)):
            t = self.office(self.later(t, timedelta(hours=1), timedelta(hours=20)))
            outcome = rng.choices(("connected", "no_answer", "left_voicemail", "busy"), (0.55, 0.2, 0.2, 0.05))[0]
            self.call(p, t, "Discovery call" if attempt == 0 else "Follow-up call", "OUTBOUND", rep, outcome=outcome)
            if outcome == "connected":
                connected_at = t
                break
        self.task(p, contact.created + timedelta(minutes=rng.randint(1, 20)), f"Call {p.first.title()} {p.last.title()}",
                  "CALL", rep, connected_at)
        if connected_at is None or not self.live(connected_at):
            self.note(p, t + timedelta(minutes=5), "Could not reach the lead; will retry next week.", rep)
            return
        self.stage(p, connected_at, "salesqualifiedlead")
        who = p.company.name if p.company else f"{p.first.title()} {p.last.title()}"
        deal = self.deal(p, connected_at + timedelta(minutes=rng.randint(5, 40)), f"{who} - {p.plan[0]}",
                         p.plan[1], "newbusiness", "appointmentscheduled", rep)
        if deal is None:
            return
        self.stage(p, deal.created, "opportunity")
        self.note(p, deal.created, f"Interested in the {p.plan[0]} plan; demo booked.", rep, deal)
        start = self.office(self.later(deal.created, timedelta(hours=20), timedelta(days=3)))
        _, held = self.meeting(p, deal.created, start, f"Demo: {who}", "Sales meeting",
                               rng.choice(("Zoom", "Google Meet")), rep, deal)
        deal.set(deal.created + timedelta(hours=1), self.end, dealstage="qualifiedtobuy")
        if not held:
            deal.set(start + timedelta(days=2), self.end, dealstage="closedlost", closedate=_iso(start + timedelta(days=2)),
                     closed_lost_reason="No show")
            return
        t = start + timedelta(hours=1)
        deal.set(t, self.end, dealstage="presentationscheduled")
        proposal = self.office(self.later(t, timedelta(hours=2), timedelta(days=1)))
        self.crm_email(p, proposal, f"Your {p.plan[0]} proposal", rep, deal, reply=0.6)
        deal.set(proposal, self.end, dealstage="decisionmakerboughtin")
        contract = self.office(self.later(proposal, timedelta(hours=12), timedelta(days=2)))
        if not deal.set(contract, self.end, dealstage="contractsent"):
            return
        self.task(p, contract, "Follow up on the contract", "EMAIL", rep,
                  self.office(self.later(contract, timedelta(days=1), timedelta(days=3))), deal)
        if rng.random() < 0.5:
            self.call(p, self.office(self.later(contract, timedelta(hours=3), timedelta(days=2))), "Contract questions",
                      rng.choice(("OUTBOUND", "INBOUND")), rep, deal)
        decided = self.office(self.later(contract, timedelta(hours=4), timedelta(days=3)))
        roll = rng.random()
        if roll < 0.25:
            self.close(deal, decided, False, rng.choice(("Price", "Chose a competitor", "No budget")))
        elif roll < 0.85 and self.purchase_blocked(p, decided, "deals", deal.id):
            self.close(deal, decided, False, "Chose a competitor")
        elif roll < 0.85 and self.close(deal, decided, True, p=p):
            p.purchased_at = decided
            self.stage(p, decided, "customer")
            self.order_emails(p, decided, f"ord_{self.hexid(10)}")

    # -- after the purchase ----------------------------------------------------------------
    def after_purchase(self, p: Person) -> None:
        rng = self.rng
        bought = p.purchased_at
        assert bought is not None
        if rng.random() < (0.7 if p.company else 0.3):
            booked = self.office(self.later(bought, timedelta(hours=2), timedelta(days=1)))
            start = self.office(self.later(booked, timedelta(days=1), timedelta(days=5)))
            self.meeting(p, booked, start, "Onboarding session", "Onboarding", rng.choice(("Zoom", "Google Meet")),
                         rng.choice(SUCCESS_MANAGERS))
        for _ in range(rng.randint(0, 2)):
            self.session(p, self.later(bought, timedelta(hours=6), timedelta(days=6)),
                         [rng.choice(list(HELP_PAGES.values()))])
        survey_at = bought + timedelta(days=rng.randint(3, 6), hours=rng.randint(0, 8))
        last = bought
        if rng.random() < 0.4:  # this customer's recurring problem
            p.problem = rng.choices([c[0] for c in TICKET_CATEGORIES], [c[1] for c in TICKET_CATEGORIES])[0]
            count = 1 + (rng.random() < 0.55) + (rng.random() < 0.3)
            last, survey_at = self.tickets(p, self.later(bought, timedelta(hours=12), timedelta(days=3)), p.problem,
                                           count, survey_at)
        if survey_at is not None:
            self.post_purchase_survey(p, survey_at)
        if p.churned_at is None and p.tickets >= 2 and rng.random() < 0.4:  # silent churn
            p.churned_at = self.later(last, timedelta(hours=12), timedelta(days=3))
        if p.churned_at is not None and p.company:
            self.note(p, self.office(p.churned_at), "Churn risk: unhappy after repeated support cases.",
                      rng.choice(SUCCESS_MANAGERS))
        happy = p.churned_at is None and (p.satisfaction is None or p.satisfaction >= (8 if p.survey_type == "NPS" else 4))
        for _ in range(rng.randint(0, 3)):
            self.recommendation(p, self.later(bought, timedelta(days=1), timedelta(days=14)))
        if rng.random() < 0.12:
            self.live_chat(p, self.later(bought, timedelta(days=1), timedelta(days=10)), "account", "/help")
        if rng.random() < 0.15:
            self.webinar(p, self.later(bought, timedelta(days=1), timedelta(days=10)))
        if happy and rng.random() < 0.25:
            self.upsell(p, self.office(self.later(bought, timedelta(days=3), timedelta(days=12))))
        self.renewal(p, bought + timedelta(days=RENEWAL_DAYS))

    def tickets(self, p: Person, at: datetime, category: str, count: int,
                survey_at: datetime | None = None) -> tuple[datetime, datetime | None]:
        """``count`` cases of the same category, each some days after the previous one closed, each
        maybe followed by a support CSAT survey. The post-purchase survey due at ``survey_at`` is
        sent in its place in the timeline; returns when the last case closed and whether the
        survey is still due."""
        rng = self.rng
        if p.contact is None:
            return at, survey_at
        subjects = TICKET_SUBJECTS[category]
        for n in range(count):
            if survey_at is not None and survey_at <= at:
                self.post_purchase_survey(p, survey_at)
                survey_at = None
            if not self.live(at) or (p.churned_at is not None and at >= p.churned_at):
                break
            if self.case_spared(p, at, category):  # fewer cases of this kind since an incident
                at = self.later(at, timedelta(hours=12), timedelta(days=3))
                continue
            self.session(p, at - timedelta(minutes=rng.randint(3, 20)), [HELP_PAGES[category]])
            channel = rng.choices(("CHAT", "PHONE", "EMAIL"), (0.35, 0.35, 0.3))[0]
            agent = rng.choice(SUPPORT_AGENTS)
            if channel == "CHAT":
                self.live_chat(p, at - timedelta(minutes=1), category.lower(), HELP_PAGES[category])
            subject = subjects[rng.randrange(len(subjects))] + (" (again)" if n else "")
            priority = "HIGH" if n >= 1 and category != "FEATURE_REQUEST" else rng.choice(("LOW", "MEDIUM", "MEDIUM"))
            ticket = self.record("tickets", p, at, {
                "subject": subject, "content": f"{subject}. Reported by {p.first.title()} {p.last.title()} "
                                               f"via {channel.lower()}.",
                "hs_pipeline": "0", "hs_pipeline_stage": "1", "hs_ticket_category": category,
                "hs_ticket_priority": priority, "source_type": channel, "hubspot_owner_id": agent,
            })
            p.tickets += 1
            p.ticket_log.append((at, category))
            self.link("tickets", ticket.id, "contacts", p.contact.id)
            if p.company:
                self.link("tickets", ticket.id, "companies", p.company.record.id)
            if channel == "PHONE":
                self.call(p, at, f"Support: {subject}", "INBOUND", agent)
            picked = self.office(self.later(at, timedelta(minutes=10), timedelta(hours=8)))
            ticket.set(picked, self.end, hs_pipeline_stage="3")
            if rng.random() < 0.4:
                ticket.set(self.later(picked, timedelta(minutes=30), timedelta(hours=6)), self.end, hs_pipeline_stage="2")
                self.crm_email(p, picked + timedelta(minutes=20), f"About your case: {subject}", agent, reply=0.8)
            if rng.random() < 0.4:
                self.note(p, picked + timedelta(minutes=5), f"{category.replace('_', ' ').lower()}: {subject}", agent)
            closed = self.office(self.later(picked, timedelta(hours=2), timedelta(hours=36)))
            if not ticket.set(closed, self.end, hs_pipeline_stage="4", closed_date=_iso(closed)):
                break
            if rng.random() < 0.6:  # "How did we do?" after the case closed
                self.survey(p, self.later(closed, timedelta(hours=1), timedelta(hours=4)), "CSAT",
                            "srv_csat_support", "Support satisfaction")
            at = self.later(closed, timedelta(hours=12), timedelta(days=3))
        return at, survey_at

    def post_purchase_survey(self, p: Person, at: datetime) -> None:
        if self.rng.random() < 0.5:
            self.survey(p, at, "NPS", "srv_nps_postpurchase", "Post-purchase NPS")
        else:
            self.survey(p, at, "CSAT", "srv_csat_order", "Order satisfaction")

    def survey(self, p: Person, at: datetime, kind: str, survey_id: str, name: str) -> None:
        """A survey email, and the answer of those who click through (NPS 0-10 or CSAT 1-5).
        Satisfaction falls with every hurtful support case opened before the answer."""
        rng = self.rng
        sent = self.email(p, at, "survey", opens=0.75, clicks=0.85, unique={"survey_id": survey_id},
                          url=f"{SITE}/survey/{survey_id}")
        if sent is None or sent.clicked_at is None or rng.random() < 0.15:
            return
        answered = sent.clicked_at + timedelta(seconds=rng.randint(30, 240))
        if not self.live(answered) or p.contact is None:
            return
        weight = {c[0]: c[2] for c in TICKET_CATEGORIES}
        hurt = sum(weight[category] for opened, category in p.ticket_log if opened < answered)
        if kind == "NPS":
            value = max(0, min(10, rng.choice((8, 9, 9, 10, 10, 7)) - (3 * hurt) // 2 + rng.randint(-1, 0)))
            group = "promoter" if value >= 9 else "passive" if value >= 7 else "detractor"
            low, high = value <= 6, value >= 9
        else:
            value = max(1, min(5, rng.choice((4, 5, 5)) - hurt // 2 + (rng.random() < 0.3)))
            group = None
            low, high = value <= 2, value >= 5
        comment = ("Same problem again, I am fed up." if low and hurt else "Not convinced." if low
                   else "Great product, smooth delivery!" if high else "Fine overall.")
        rec = self.record("feedback_submissions", p, answered, {
            "hs_survey_type": kind, "hs_survey_name": name, "hs_survey_id": survey_id, "hs_survey_channel": "EMAIL",
            "hs_value": value, "hs_response_group": group, "hs_content": comment,
            "hs_submission_timestamp": _iso(answered),
        })
        self.link("feedback_submissions", rec.id, "contacts", p.contact.id)
        p.survey_type, p.satisfaction = kind, value
        if high and kind == "NPS":
            self.stage(p, answered + timedelta(minutes=5), "evangelist")
        if low and hurt and p.churned_at is None and rng.random() < 0.8:  # the moment that cracks it
            p.churned_at = self.later(answered, timedelta(hours=2), timedelta(days=2))

    def upsell(self, p: Person, at: datetime) -> None:
        rep = self.rng.choice(SALES_REPS)
        who = p.company.name if p.company else f"{p.first.title()} {p.last.title()}"
        deal = self.deal(p, at, f"Upsell - {who} - extra seats", p.plan[1] // 2,
                         "existingbusiness", "presentationscheduled", rep)
        self.call(p, at + timedelta(minutes=10), "Upsell call", "OUTBOUND", rep, deal)
        if deal is not None and self.rng.random() < 0.7:
            self.close(deal, self.office(self.later(at, timedelta(days=1), timedelta(days=4))), True, p=p)

    def renewal(self, p: Person, due: datetime) -> None:
        rng = self.rng
        reminder = due - timedelta(days=3)
        if p.contact is None or not self.live(reminder):
            return
        subscription = f"sub_{p.user_id}"
        self.email(p, reminder, "renewal", opens=0.6, clicks=0.2, unique={"subscription_id": subscription},
                   url=f"{SITE}/account/subscription")
        who = p.company.name if p.company else f"{p.first.title()} {p.last.title()}"
        deal = self.deal(p, reminder + timedelta(minutes=5), f"Renewal - {who} - {p.plan[0]}", p.plan[1],
                         "existingbusiness", "contractsent", rng.choice(SUCCESS_MANAGERS))
        if deal is None:
            return
        if p.churned_at is not None and p.churned_at <= due:
            self.close(deal, due, False, "Churned - dissatisfied")
        else:
            self.close(deal, due, True, p=p)

    def newsletters(self, p: Person) -> None:
        rng = self.rng
        # What this reader will do with the marketing email, and after how many of them.
        fate = rng.choices(("read", "unsubscribe", "group_unsubscribe", "spamreport"), (0.76, 0.1, 0.11, 0.03))[0]
        patience = rng.randint(0, 3)
        received = 0
        for week, day in ((w, d) for w in range(self.world.weeks) for d in (1, 4)):
            # Tuesdays: the newsletter; Fridays: the offers of the week.
            send_at = self.t0 + timedelta(weeks=week, days=day, hours=9, seconds=rng.randint(0, 900))
            if not p.newsletter or p.contact is None or p.contact.created >= send_at or (
                    p.bounced_at is not None and p.bounced_at <= send_at):
                continue
            if (p.email_optout_at is not None and p.email_optout_at <= send_at) or any(
                    a <= send_at < b for a, b in p.newsletter_paused):
                continue
            campaign_id = f"nl-{week + 1:03d}" if day == 1 else f"offers-{week + 1:03d}"
            url = f"{SITE}/product?utm_source=newsletter&utm_medium=email&utm_campaign={campaign_id}"
            sent = self.email(p, send_at, "newsletter", opens=0.35, clicks=0.3, unique={"campaign_id": campaign_id},
                              url=url, group=NEWSLETTER_GROUP)
            if sent is None or not sent.delivered:
                continue
            received += 1
            churned = p.churned_at is not None and p.churned_at <= send_at
            if sent.clicked_at is not None:
                self.session(p, sent.clicked_at + timedelta(seconds=3), ["/product", *self.research_pages(1)],
                             {"source": "newsletter", "medium": "email", "name": campaign_id})
            when = sent.opened_at + timedelta(seconds=30) if sent.opened_at else self.later(
                send_at, timedelta(minutes=5), timedelta(hours=20))
            if churned and rng.random() < 0.5:  # the unhappy leave the list too
                self.unsubscribe(p, when, sent, globally=rng.random() < 0.5)
            elif fate == "spamreport" and received > patience:
                self._emit(p, {"email": p.crm_email, "sg_message_id": f"{sent.message_id}.filter0001",
                               "event": "spamreport", "timestamp": int(when.timestamp())})
                self.opt_out(p, when)
            elif fate != "read" and received > patience:
                self.unsubscribe(p, when, sent, globally=fate == "unsubscribe")
                fate = "read"

    def return_visits(self) -> None:
        """Signed-up customers who have not churned come back to the site, on average
        ``return_visits_per_week`` visits a week (fewer at weekends): product pages, reviews,
        help pages. Drawn from an RNG of their own, so that with none (the default) the world is
        byte-for-byte what it was without this step."""
        if self.return_visits_per_week <= 0:
            return
        main = self.rng
        mean_gap_hours = 7 * 24 / self.return_visits_per_week
        pages = (*RESEARCH_PAGES, "/", "/help", *HELP_PAGES.values())
        try:
            for p in self.world.people:
                self.rng = random.Random(f"{self.world.seed}:return-visits:{p.index}")  # each their own
                at = p.signed_up_at
                while at is not None:
                    at = at + timedelta(hours=self.rng.expovariate(1 / mean_gap_hours))
                    if not self.live(at) or (p.churned_at is not None and at >= p.churned_at):
                        break
                    if at.weekday() >= 5 and self.rng.random() < 0.4:  # quieter weekends
                        continue
                    self.session(p, at, [self.rng.choice(pages) for _ in range(self.rng.randint(1, 4))])
        finally:
            self.rng = main

    # -- planted incidents ----------------------------------------------------------------------
    def _active(self, effect: str, at: datetime) -> list[tuple[int, Incident]]:
        return [(n, i) for n, i in enumerate(self.incidents)
                if effect in i.effects and at >= i.starts(self.world.start)]

    def _changed(self, incident: Incident, effect: str, object_type: str, object_id: str, person: int) -> None:
        self.world.incident_truth.append((incident.text, effect, object_type, object_id, person))

    def purchase_blocked(self, p: Person, at: datetime, object_type: str, object_id: str) -> bool:
        """``conversion=xF``: a purchase decided at ``at`` by someone who met the target in the
        CONVERSION_LOOKBACK_DAYS before happens only with probability F."""
        for _, incident in self._active("conversion", at):
            if (self.has_met(p, incident, at - timedelta(days=CONVERSION_LOOKBACK_DAYS), at)
                    and self.incident_rng(p).random() >= incident.effects["conversion"]):
                self._changed(incident, "conversion", object_type, object_id, p.index)
                p.purchase_stopped = True
                return True
        return False

    def case_spared(self, p: Person, at: datetime, category: str) -> bool:
        """``tickets=xF`` with F < 1: a case of the target's categories opened from week N is
        opened only with probability F."""
        for _, incident in self._active("tickets", at):
            factor = incident.effects["tickets"]
            if factor < 1 and category in incident.categories() and self.incident_rng(p).random() >= factor:
                self._changed(incident, "tickets", "spared_case", f"{category}@{_iso(at)}", p.index)
                return True
        return False

    def more_cases(self) -> None:
        """``tickets=xF`` with F > 1: in each week from N, Poisson((F-1) x the week's cases) more
        cases of each target category, each opened by a customer who has bought and not left, at
        a random moment of the week (help page, chat or call, ticket, survey: a whole case)."""
        main = self.rng
        try:
            for n, incident in enumerate(self.incidents):
                factor = incident.effects.get("tickets", 1.0)
                if factor <= 1:
                    continue
                self.rng = random.Random(f"{self.seed}:incident:{n}:tickets"
                                         + (f":{self.first_index}" if self.first_index else ""))
                buyers = sorted((p for p in self.world.people if p.purchased_at is not None and p.contact),
                                key=lambda p: p.index)
                for week in range(incident.week - 1, self.world.weeks):
                    lo, hi = self.t0 + timedelta(weeks=week), self.t0 + timedelta(weeks=week + 1)
                    for category in incident.categories():
                        opened = sum(1 for r in self.records["tickets"]
                                     if r.props["hs_ticket_category"] == category and lo <= r.created < hi)
                        for _ in range(_poisson(self.rng, (factor - 1) * opened)):
                            at = self.moment(lo, hi)
                            for _attempt in range(20):
                                p = self.rng.choice(buyers) if buyers else None
                                if p is not None and p.purchased_at < at and (p.churned_at is None
                                                                              or at < p.churned_at):
                                    before = len(self.records["tickets"])
                                    self.tickets(p, at, category, 1)
                                    for rec in self.records["tickets"][before:]:
                                        self._changed(incident, "tickets", "tickets", rec.id, p.index)
                                    break
        finally:
            self.rng = main

    def lower_answers(self) -> None:
        """``csat=-D`` / ``nps=-D``: answers given from week N by customers who met the target in
        the FEEDBACK_LOOKBACK_DAYS before move by D points, clamped to the scale. (The answer
        only: an incident on satisfaction does not by itself make anyone churn.)"""
        if not any(e in i.effects for i in self.incidents for e in ("csat", "nps")):
            return
        people = {p.index: p for p in self.world.people}
        latest: dict[int, CrmRecord] = {}
        weight = {c[0]: c[2] for c in TICKET_CATEGORIES}
        for rec in self.records["feedback_submissions"]:
            p = people[rec.person]
            kind = rec.props["hs_survey_type"]
            effect = "nps" if kind == "NPS" else "csat"
            if rec.person not in latest or rec.created >= latest[rec.person].created:
                latest[rec.person] = rec
            value = int(rec.props["hs_value"])
            changed = value
            for _, incident in self._active(effect, rec.created):
                if self.has_met(p, incident, rec.created - timedelta(days=FEEDBACK_LOOKBACK_DAYS), rec.created):
                    changed = changed + incident.effects[effect]
                    self._changed(incident, effect, "feedback_submissions", rec.id, p.index)
            if changed == value:
                continue
            changed = int(max(0, min(10, round(changed))) if kind == "NPS" else max(1, min(5, round(changed))))
            hurt = sum(weight[category] for opened, category in p.ticket_log if opened < rec.created)
            if kind == "NPS":
                low, high = changed <= 6, changed >= 9
                rec.props["hs_response_group"] = "promoter" if high else "passive" if changed >= 7 else "detractor"
            else:
                low, high = changed <= 2, changed >= 5
            rec.props["hs_value"] = changed
            rec.props["hs_content"] = ("Same problem again, I am fed up." if low and hurt else "Not convinced."
                                       if low else "Great product, smooth delivery!" if high else "Fine overall.")
        for index, rec in latest.items():
            people[index].satisfaction = int(rec.props["hs_value"])

    def less_engagement(self) -> None:
        """``engagement=xF``: customers who met the target before week N keep a fraction F of
        their browsing from week N: whole days of web pages (not sign-up, checkout or contact
        forms), recommendation clicks, and newsletter and renewal opens and clicks."""
        for n, incident in enumerate(self.incidents):
            if "engagement" not in incident.effects:
                continue
            starts = incident.starts(self.world.start)
            cohort = [p for p in self.world.people if self.has_met(p, incident, self.t0, starts)]
            by_anonymous = {p.anonymous_id: p for p in cohort}
            by_email = {p.crm_email: p for p in cohort}
            factor = incident.effects["engagement"]
            key = f"{self.seed}:incident:{n}:engagement"
            dropped: set[str] = set()
            kept_web = []
            since = _iso(starts)
            for event in self.world.web_events:
                p = by_anonymous.get(event["anonymousId"])
                if (p is not None and event["timestamp"] >= since and _is_browsing(event)
                        and not _keeps(key, p.index, event["timestamp"][:10], factor)):
                    dropped.add(event["messageId"])
                    self._changed(incident, "engagement", "segment", event["messageId"], p.index)
                else:
                    kept_web.append(event)
            kept_mail = []
            since_ts = starts.timestamp()
            for event in self.world.email_events:
                p = by_email.get(event["email"])
                if (p is not None and event["event"] in ("open", "click") and event["timestamp"] >= since_ts
                        and _email_category(event) in ("newsletter", "renewal")
                        and not _keeps(key, p.index, _day_of(event["timestamp"]), factor)):
                    if event["sg_event_id"] not in dropped:
                        self._changed(incident, "engagement", "sendgrid", event["sg_event_id"], p.index)
                    dropped.add(event["sg_event_id"])
                else:
                    kept_mail.append(event)
            self._keep_only(kept_web, kept_mail, dropped)

    # -- the end ----------------------------------------------------------------------------
    def after_churn(self) -> None:
        """Churned customers are gone: drop the visits, opens and clicks generated for them past the
        moment they churned (emails sent before it and read later, visits planned before it)."""
        gone_web = {p.anonymous_id: _iso(p.churned_at) for p in self.world.people if p.churned_at}
        gone_mail = {p.crm_email: p.churned_at.timestamp() for p in self.world.people if p.churned_at}
        dropped: set[str] = set()
        kept_web = []
        for event in self.world.web_events:
            if event["anonymousId"] in gone_web and event["timestamp"] >= gone_web[event["anonymousId"]]:
                dropped.add(event["messageId"])
            else:
                kept_web.append(event)
        kept_mail = []
        for event in self.world.email_events:
            if (event["event"] in ("open", "click") and event["email"] in gone_mail
                    and event["timestamp"] >= gone_mail[event["email"]]):
                dropped.add(event["sg_event_id"])
            else:
                kept_mail.append(event)
        self._keep_only(kept_web, kept_mail, dropped)

    def _keep_only(self, kept_web: list, kept_mail: list, dropped: set[str]) -> None:
        """Replace the world's events by the kept ones and forget the dropped ids in the truth
        (nothing to do when nothing was dropped)."""
        if dropped:
            self.world.web_events[:] = kept_web
            self.world.email_events[:] = kept_mail
            self.world.truth[:] = [row for row in self.world.truth if row[1] not in dropped]

    def finish(self) -> None:
        """Settle companies, then write every CRM object as the API serves it at the world's end."""
        for company in self.companies:
            if not company.contacts:
                continue
            first = min(company.contacts, key=lambda c: (c.created, int(c.id)))
            company.record.person = first.person
            company.record.created = company.record.modified = first.created + timedelta(seconds=5)
            company.record.props["createdate"] = _iso(company.record.created)
            if self.rng.random() < 0.4:  # enriched later
                company.record.set(self.later(company.record.created, timedelta(hours=1), timedelta(days=6)), self.end,
                                   numberofemployees=self.rng.choice((5, 12, 40, 150, 800)))
            self.records["companies"].append(company.record)
        for object_type in CRM_TYPES:
            records = sorted(self.records[object_type], key=lambda r: int(r.id))
            self.world.crm[object_type] = [r.as_hubspot() for r in records]
            self.world.truth.extend((f"hubspot_{object_type}", r.id, r.person) for r in records)


def _title(path: str) -> str:
    path = path.split("?")[0]
    return path.strip("/").replace("/", " - ").replace("-", " ").title() or "Home"


def _accumulate(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; normal approximation for large means)."""
    if mean <= 0:
        return 0
    if mean > 60:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _keeps(key: str, person: int, day: str, fraction: float) -> bool:
    """A stable coin for (incident, person, day): true with probability ``fraction``."""
    digest = hashlib.blake2b(f"{key}:{person}:{day}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def _email_category(event: dict[str, Any]) -> str | None:
    """SendGrid sends one category as a string, several as an array (ours: the first is the kind)."""
    category = event.get("category")
    return category[0] if isinstance(category, list) else category


def _day_of(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _is_browsing(event: dict[str, Any]) -> bool:
    if event["type"] == "page":
        return event["context"]["page"]["path"] not in _NOT_BROWSING
    return event["type"] == "track" and event.get("event") == "Product Clicked"


def _web_touch(event: dict[str, Any]) -> tuple[str, str] | None:
    """The (touchpoint, channel) the taxonomy gives a Segment event (None: not a touchpoint)."""
    kind = event["type"]
    if kind == "track":
        name = event["event"]
        if name in ("Signed Up", "Form Submitted"):
            return "initial_contact", "web_form"
        if name == "Live Chat Started":
            return "live_chat", "chat"
        if name.startswith("Webinar"):
            return "events_webinars", "events"
        if name == "Checkout Started":
            return "purchase_intent", "web"
        if name == "Order Completed":
            return "purchase", "web"
        if name == "Product Clicked":
            recommended = "recommend" in str(event.get("properties", {}).get("list_id", ""))
            return ("personalised_recommendation" if recommended else "product_research"), "web"
        return "website_interaction", "web"
    if kind != "page":
        return None
    campaign = event["context"].get("campaign")
    if campaign and campaign.get("medium") in ("cpc", "ppc", "display", "paid_social"):
        return "online_advertising", "paid_ads"
    section = event["context"]["page"]["path"].split("/")[1] if event["context"]["page"]["path"] != "/" else ""
    return {"": "website_visit", "product": "product_research", "pricing": "product_research",
            "search": "product_research", "cart": "product_research", "reviews": "reviews_read",
            "help": "self_service_help", "signup": "initial_contact", "checkout": "checkout_page",
            }.get(section, "website_visit"), ("web_form" if section == "signup" else "web")


def generate(customers: int, weeks: int, seed: int, start: date, return_visits_per_week: float = 0.0,
             first_index: int = 0, incidents: tuple[Incident, ...] | list[Incident] = ()) -> World:
    """Build the world for these arguments (deterministic). ``return_visits_per_week``: how often
    a signed-up customer comes back to the site, on average (0: only the visits of their journey).
    ``first_index``: build people ``first_index ..`` only, one slice of a larger population
    (indices, addresses and CRM ids never collide with another slice's; companies are not
    shared across slices), so a large world can be built in parallel slices. ``incidents``:
    planted incidents (:mod:`touchpoint_sim.incidents`); the weeks before each incident are
    those of the world without it (same seed)."""
    if customers <= 0 or weeks <= 0:
        raise ValueError("customers and weeks must be positive")
    if return_visits_per_week < 0 or first_index < 0:
        raise ValueError("return_visits_per_week and first_index must not be negative")
    check_incidents(incidents, weeks)
    return _Builder(customers, weeks, seed, start, return_visits_per_week, first_index, tuple(incidents)).build()
