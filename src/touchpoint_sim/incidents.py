"""Planted incidents: ``TARGET:week=N[..M]:EFFECT[:EFFECT...]``, parsed and checked.

An incident changes an otherwise steady world from week ``N`` (1-based: week 1 is
``[start, start + 7 days)``) to its end, or with ``week=N..M`` from week N to week M included
(a problem that is fixed), for the people who met ``TARGET``:

* ``csat=-D`` / ``nps=-D``: survey answers given from week N by customers who met TARGET in the
  :data:`FEEDBACK_LOOKBACK_DAYS` days before the answer drop by D points (clamped to 1..5 / 0..10);
* ``conversion=xF``: purchases decided from week N by customers who met TARGET in the
  :data:`CONVERSION_LOOKBACK_DAYS` days before happen only with probability F (0..1);
* ``tickets=xF``: support cases of TARGET's categories opened from week N are multiplied by F;
* ``engagement=xF``: customers who met TARGET before week N keep only a fraction F (0..1) of
  their browsing, opens and clicks from week N.

TARGET is a touchpoint or a channel as the warehouse's taxonomy names them
(``dbt_project/seeds/touchpoint_taxonomy.csv``; a test keeps the two in step) or a HubSpot
ticket category. Only the names the simulator emits are accepted: a planted incident on
something the simulated population never meets could not show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

#: the dbt vars ``feedback_lookback_days`` and ``attribution_lookback_days``: the windows in which
#: the warehouse ties an answer or a conversion to the touchpoints before it
FEEDBACK_LOOKBACK_DAYS = 14
CONVERSION_LOOKBACK_DAYS = 30

#: Every (touchpoint, channel) the simulator emits, as the taxonomy classifies its events.
TOUCHPOINT_CHANNELS: dict[str, tuple[str, ...]] = {
    "online_advertising": ("paid_ads",),
    "social_media": ("social",),
    "website_visit": ("web",),
    "product_research": ("web",),
    "reviews_read": ("web",),
    "self_service_help": ("web",),
    "checkout_page": ("web",),
    "purchase_intent": ("web",),
    "purchase": ("web", "sales"),
    "personalised_recommendation": ("web",),
    "initial_contact": ("web_form",),
    "live_chat": ("chat",),
    "events_webinars": ("events",),
    "newsletter": ("email",),
    "order_confirmation": ("email",),
    "delivery_packaging": ("email", "support"),
    "renewals_subscriptions": ("email", "sales"),
    "post_purchase_survey": ("email", "survey"),
    "email_exchange": ("email",),
    "sales_interaction": ("phone", "meeting", "sales"),
    "customer_support": ("phone", "support"),
    "onboarding": ("meeting",),
    "in_store_experience": ("store",),
    "upgrade": ("sales",),
    "billing_pricing": ("support",),
    "product_quality": ("support",),
}
CHANNELS = tuple(sorted({c for channels in TOUCHPOINT_CHANNELS.values() for c in channels}))
#: HubSpot ticket category -> the touchpoint the taxonomy gives its tickets
CATEGORY_TOUCHPOINTS = {
    "DELIVERY_ISSUE": "delivery_packaging",
    "PRODUCT_ISSUE": "product_quality",
    "BILLING_ISSUE": "billing_pricing",
    "GENERAL_INQUIRY": "customer_support",
    "FEATURE_REQUEST": "customer_support",
}
CATEGORIES = tuple(CATEGORY_TOUCHPOINTS)

#: effect -> how its value is written
EFFECTS = {"csat": "-D", "nps": "-D", "conversion": "xF", "tickets": "xF", "engagement": "xF"}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class Incident:
    """One planted incident. ``effects`` maps an effect name to its number (D or F)."""

    text: str
    target: str
    kind: str  # 'touchpoint' | 'channel' | 'category'
    week: int
    effects: dict[str, float] = field(hash=False)
    last_week: int | None = None  # None: to the world's end

    def starts(self, start: date) -> datetime:
        """The first moment the incident holds (UTC midnight of week N's Monday)."""
        return _monday(start, self.week)

    def ends(self, start: date) -> datetime | None:
        """The first moment it no longer holds (week M + 1's Monday), or None: never."""
        return None if self.last_week is None else _monday(start, self.last_week + 1)

    def holds(self, at: datetime, start: date) -> bool:
        ends = self.ends(start)
        return self.starts(start) <= at and (ends is None or at < ends)

    def categories(self) -> tuple[str, ...]:
        """The ticket categories whose cases ``tickets=xF`` multiplies."""
        if self.kind == "category":
            return (self.target,)
        if self.kind == "channel":
            return CATEGORIES if self.target == "support" else ()
        return tuple(
            c for c, touchpoint in CATEGORY_TOUCHPOINTS.items() if touchpoint == self.target
        )

    def met(self, touchpoint: str, channel: str, category: str | None) -> bool:
        """Whether a touch (classified as the taxonomy does) is a meeting with the target."""
        if self.kind == "touchpoint":
            return touchpoint == self.target
        if self.kind == "channel":
            return channel == self.target
        return category == self.target

    def as_dict(self, start: date) -> dict:
        return {
            "incident": self.text,
            "target": self.target,
            "kind": self.kind,
            "week": self.week,
            "last_week": self.last_week,
            "from": self.starts(start).date().isoformat(),
            "until": ends.date().isoformat() if (ends := self.ends(start)) else None,
            "effects": dict(self.effects),
        }


def _monday(start: date, week: int) -> datetime:
    """UTC midnight of week ``week``'s Monday (1-based) in a world starting on ``start``."""
    return datetime.combine(start, datetime.min.time(), UTC) + timedelta(weeks=week - 1)


def _fail(text: str, problem: str) -> ValueError:
    return ValueError(f"--incident {text!r}: {problem}")


def _effects_help() -> str:
    return ", ".join(f"{name}={form}" for name, form in EFFECTS.items())


def parse_incident(text: str) -> Incident:
    """Parse ``TARGET:week=N[..M]:EFFECT[:EFFECT...]``; a ValueError names the bad part and the
    choices."""
    parts = text.strip().split(":")
    if len(parts) < 3 or not parts[0]:
        raise _fail(
            text, f"expected TARGET:week=N[..M]:EFFECT[:EFFECT...] (effects: {_effects_help()})"
        )
    target = parts[0]
    if target in TOUCHPOINT_CHANNELS:
        kind = "touchpoint"
    elif target in CHANNELS:
        kind = "channel"
    elif target in CATEGORIES:
        kind = "category"
    else:
        raise _fail(
            text,
            f"unknown touchpoint, channel or case category {target!r} (touchpoints: "
            f"{', '.join(sorted(TOUCHPOINT_CHANNELS))}; channels: {', '.join(CHANNELS)}; "
            f"case categories: {', '.join(CATEGORIES)})",
        )
    name, _, value = parts[1].partition("=")
    first, dots, last = value.partition("..")
    if (
        name != "week"
        or not first.isdigit()
        or int(first) < 1
        or (dots and (not last.isdigit() or int(last) < int(first)))
    ):
        raise _fail(
            text,
            f"{parts[1]!r} is not week=N or week=N..M with N a week number from 1 and M >= N",
        )
    week, last_week = int(first), int(last) if dots else None
    effects: dict[str, float] = {}
    for part in parts[2:]:
        name, eq, value = part.partition("=")
        if name not in EFFECTS or not eq:
            raise _fail(text, f"unknown effect {part!r} (effects: {_effects_help()})")
        if name in effects:
            raise _fail(text, f"effect {name!r} given twice")
        if EFFECTS[name] == "-D":
            if not _NUMBER.fullmatch(value) or float(value) == 0:
                raise _fail(
                    text, f"{part!r}: {name} takes a non-zero change in points, e.g. {name}=-2"
                )
            effects[name] = float(value)
            continue
        number = value[1:]
        if not value.startswith("x") or not _NUMBER.fullmatch(number) or float(number) < 0:
            raise _fail(text, f"{part!r}: {name} takes a factor xF, e.g. {name}=x0.3")
        factor = float(number)
        if name in ("conversion", "engagement") and factor > 1:
            raise _fail(text, f"{part!r}: {name} keeps a fraction of what happens, F from 0 to 1")
        effects[name] = factor
    incident = Incident(
        text=text.strip(),
        target=target,
        kind=kind,
        week=week,
        effects=effects,
        last_week=last_week,
    )
    if "tickets" in effects and not incident.categories():
        raise _fail(
            text,
            f"{target!r} has no support case category for tickets= (targets with cases: "
            f"{', '.join(sorted({*CATEGORIES, *CATEGORY_TOUCHPOINTS.values(), 'support'}))})",
        )
    return incident


def check_incidents(incidents: tuple[Incident, ...] | list[Incident], weeks: int) -> None:
    """Incidents must start and end within the world."""
    for incident in incidents:
        if incident.week > weeks:
            raise _fail(incident.text, f"week={incident.week} is past the world's {weeks} weeks")
        if (incident.last_week or 0) > weeks:
            raise _fail(
                incident.text, f"week {incident.last_week} is past the world's {weeks} weeks"
            )
