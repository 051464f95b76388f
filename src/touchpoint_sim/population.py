"""A seeded population of customers living journeys across web, email and CRM.

Same seed, same arguments: byte-for-byte the same world. Every event carries the index of the
person who produced it, which is written out as ground truth for tests.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

FIRST_NAMES = ("ana", "ben", "chloe", "david", "emma", "farid", "grace", "hugo", "ines", "jules",
               "karin", "liam", "maya", "noah", "olga", "paul", "quinn", "rosa", "sami", "tara")
LAST_NAMES = ("martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand",
              "leroy", "moreau", "simon", "laurent", "lefebvre", "michel", "garcia", "david")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
ACQUISITION = (  # (hubspot source, utm medium, utm source, weight)
    ("ORGANIC_SEARCH", None, None, 0.35),
    ("PAID_SEARCH", "cpc", "google", 0.2),
    ("SOCIAL_MEDIA", "paid_social", "facebook", 0.1),
    ("REFERRALS", None, None, 0.1),
    ("EMAIL_MARKETING", "email", "newsletter", 0.1),
    ("DIRECT_TRAFFIC", None, None, 0.15),
)
RESEARCH_PAGES = ("/product", "/product/features", "/pricing", "/reviews", "/product/integrations")
HELP_PAGES = ("/help", "/help/billing", "/help/delivery", "/help/account")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
SITE = "https://www.touchpoint-shop.example"


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
    signed_up_at: datetime | None = None
    purchased_at: datetime | None = None
    newsletter: bool = False


@dataclass
class World:
    start: date
    weeks: int
    seed: int
    people: list[Person] = field(default_factory=list)
    web_events: list[dict[str, Any]] = field(default_factory=list)
    email_events: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    #: (source, natural id, person index)
    truth: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), UTC) + timedelta(weeks=self.weeks)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Builder:
    def __init__(self, customers: int, weeks: int, seed: int, start: date) -> None:
        self.rng = random.Random(seed)
        self.world = World(start=start, weeks=weeks, seed=seed)
        self.customers = customers
        self.t0 = datetime.combine(start, datetime.min.time(), UTC)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def moment(self, lo: datetime, hi: datetime) -> datetime:
        """A random moment in [lo, hi), biased to daytime, never past the world's end."""
        hi = min(hi, self.world.end - timedelta(minutes=1))
        if hi <= lo:
            return lo
        at = lo + timedelta(seconds=self.rng.uniform(0, (hi - lo).total_seconds()))
        return at.replace(microsecond=(at.microsecond // 1000) * 1000)

    def build(self) -> World:
        for index in range(self.customers):
            self.world.people.append(self.person(index))
        for person in self.world.people:
            self.journey(person)
        self.newsletters()
        self.world.web_events.sort(key=lambda e: e["timestamp"])
        self.world.email_events.sort(key=lambda e: e["timestamp"])
        return self.world

    def person(self, index: int) -> Person:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        weights = [a[3] for a in ACQUISITION]
        acquisition = rng.choices(ACQUISITION, weights)[0][:3]
        span = self.world.end - self.t0
        arrived = self.moment(self.t0, self.t0 + span * 0.8)
        return Person(
            index=index, first=first, last=last,
            email=f"{first}.{last}{index}@{rng.choice(DOMAINS)}",
            anonymous_id=self.uid(), user_id=f"usr_{index:06d}", contact_id=str(5001 + index),
            acquisition=acquisition, arrived_at=arrived, signs_up=rng.random() < 0.7,
        )

    def page(self, person: Person, at: datetime, path: str, identified: bool, campaign=None) -> None:
        sent = at + timedelta(milliseconds=self.rng.randint(5, 900))
        received = sent + timedelta(milliseconds=self.rng.randint(20, 400))
        context: dict[str, Any] = {
            "page": {"path": path, "url": SITE + path, "title": path.strip("/").title() or "Home",
                     "referrer": "https://www.google.com/" if campaign is None else ""},
            "userAgent": USER_AGENT, "ip": "203.0.113.%d" % self.rng.randint(1, 254),
            "library": {"name": "analytics.js", "version": "5.2.0"},
        }
        if campaign:
            context["campaign"] = campaign
        event = {
            "type": "page", "messageId": f"ajs-{self.uid()}", "anonymousId": person.anonymous_id,
            "userId": person.user_id if identified else None,
            "name": context["page"]["title"], "properties": {"path": path, "url": SITE + path},
            "context": context, "timestamp": _iso(at), "originalTimestamp": _iso(at),
            "sentAt": _iso(sent), "receivedAt": _iso(received), "version": 2,
        }
        if not identified:
            event.pop("userId")
        self.world.web_events.append(event)
        self.world.truth.append(("segment", event["messageId"], person.index))

    def identify(self, person: Person, at: datetime) -> None:
        event = {
            "type": "identify", "messageId": f"ajs-{self.uid()}", "anonymousId": person.anonymous_id,
            "userId": person.user_id,
            "traits": {"email": person.email, "firstName": person.first.title(), "lastName": person.last.title()},
            "context": {"userAgent": USER_AGENT}, "timestamp": _iso(at), "originalTimestamp": _iso(at),
            "sentAt": _iso(at), "receivedAt": _iso(at + timedelta(milliseconds=150)), "version": 2,
        }
        self.world.web_events.append(event)
        self.world.truth.append(("segment", event["messageId"], person.index))

    def journey(self, person: Person) -> None:
        rng = self.rng
        source, medium, utm_source = person.acquisition
        campaign = ({"source": utm_source, "medium": medium, "name": "autumn_sale"} if medium else None)
        at = person.arrived_at
        self.page(person, at, "/", False, campaign)
        for _ in range(rng.randint(1, 5)):
            at = self.moment(at, at + timedelta(hours=rng.choice((1, 6, 30, 72))))
            self.page(person, at, rng.choice(RESEARCH_PAGES), False)
        if not person.signs_up:
            return
        at = self.moment(at, at + timedelta(days=3))
        person.signed_up_at = at
        self.page(person, at, "/signup", False)
        self.identify(person, at + timedelta(seconds=2))
        person.newsletter = rng.random() < 0.6
        self.contact(person)
        if rng.random() < 0.5:
            at = self.moment(at, at + timedelta(days=7))
            person.purchased_at = at
            self.page(person, at, "/checkout", True)
            self.email(person, at + timedelta(minutes=1), "order_confirmation", opens=0.8)
            for _ in range(rng.randint(0, 3)):
                later = self.moment(at, at + timedelta(days=14))
                self.page(person, later, rng.choice(HELP_PAGES), True)

    def contact(self, person: Person) -> None:
        created = person.signed_up_at + timedelta(seconds=30)
        modified = created
        if self.rng.random() < 0.3:  # edited later by sales
            modified = self.moment(created, created + timedelta(days=10))
        props = {
            "email": person.email, "firstname": person.first.title(), "lastname": person.last.title(),
            "createdate": _iso(created), "lastmodifieddate": _iso(modified),
            "lifecyclestage": "lead", "hs_analytics_source": person.acquisition[0],
            "country": self.rng.choice(("FR", "DE", "GB", "US", "ES")), "hs_object_id": person.contact_id,
        }
        self.world.contacts.append({
            "id": person.contact_id, "properties": props, "createdAt": props["createdate"],
            "updatedAt": props["lastmodifieddate"], "archived": False,
        })
        self.world.truth.append(("hubspot", person.contact_id, person.index))

    def email(self, person: Person, at: datetime, category: str, opens: float, campaign_id: str | None = None) -> None:
        if at >= self.world.end:
            return
        message_id = self.uid().replace("-", "")[:22]
        smtp_id = f"<{message_id}@ismtpd0001p1lon1.sendgrid.net>"
        # SendGrid sends `category` as a string for one category, an array for several.
        cat: Any = category if self.rng.random() < 0.5 else [category, "touchpoint"]
        base = {"email": person.email, "sg_message_id": f"{message_id}.filter0001", "smtp-id": smtp_id,
                "category": cat}
        if campaign_id:
            base["campaign_id"] = campaign_id  # a unique argument: arrives as a top-level key
        if self.rng.random() < 0.02:
            self._emit(person, {**base, "event": "dropped", "reason": "Bounced Address", "timestamp": int(at.timestamp())},
                       with_id=False)
            return
        self._emit(person, {**base, "event": "processed", "timestamp": int(at.timestamp())})
        if self.rng.random() < 0.03:
            self._emit(person, {**base, "event": "bounce", "type": "bounce", "status": "5.1.1",
                                "reason": "550 5.1.1 user unknown", "timestamp": int(at.timestamp()) + 3})
            return
        self._emit(person, {**base, "event": "delivered", "response": "250 OK", "timestamp": int(at.timestamp()) + 2})
        if self.rng.random() < opens:
            opened = self.moment(at, at + timedelta(hours=20))
            self._emit(person, {**base, "event": "open", "useragent": USER_AGENT, "ip": "198.51.100.7",
                                "sg_machine_open": False, "timestamp": int(opened.timestamp())})
            if self.rng.random() < 0.3:
                self._emit(person, {**base, "event": "click", "url": SITE + "/product", "useragent": USER_AGENT,
                                    "ip": "198.51.100.7", "timestamp": int(opened.timestamp()) + 40})

    def _emit(self, person: Person, event: dict[str, Any], with_id: bool = True) -> None:
        if with_id:
            event["sg_event_id"] = self.uid().replace("-", "")[:22]
        self.world.email_events.append(event)
        self.world.truth.append(("sendgrid", event.get("sg_event_id") or "", person.index))
        if self.rng.random() < 0.02:  # at-least-once delivery: the same event twice
            self.world.email_events.append(dict(event))

    def newsletters(self) -> None:
        for week in range(self.world.weeks):
            send_at = self.t0 + timedelta(weeks=week, days=1, hours=9)
            for person in self.world.people:
                if person.newsletter and person.signed_up_at and person.signed_up_at < send_at:
                    self.email(person, send_at, "newsletter", opens=0.35, campaign_id=f"nl-{week + 1:03d}")


def generate(customers: int, weeks: int, seed: int, start: date) -> World:
    """Build the world for these arguments (deterministic)."""
    if customers <= 0 or weeks <= 0:
        raise ValueError("customers and weeks must be positive")
    return _Builder(customers, weeks, seed, start).build()
