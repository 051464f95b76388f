"""Web events as Segment sends them: pages, tracks, identifies; visits and return visits."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from touchpoint.progress import progress
from touchpoint_sim.population.base import Base
from touchpoint_sim.population.catalog import HELP_PAGES, PRODUCTS, RESEARCH_PAGES, SITE
from touchpoint_sim.population.records import Person, iso
from touchpoint_sim.population.taxonomy import web_touch


class Web(Base):
    """What a person does on the site, as Segment events in the world."""

    def web(
        self,
        p: Person,
        at: datetime,
        kind: str,
        page: str | None = None,
        referrer: str = "",
        **fields: Any,
    ) -> dict | None:
        if not self.live(at) or (p.churned_at is not None and at >= p.churned_at):
            return None
        sent = at + timedelta(milliseconds=self.rng.randint(5, 900))
        received = sent + timedelta(milliseconds=self.rng.randint(20, 400))
        context: dict[str, Any] = {
            "userAgent": p.user_agent,
            "ip": p.ip,
            "locale": {"FR": "fr-FR", "DE": "de-DE", "ES": "es-ES", "GB": "en-GB", "US": "en-US"}[
                p.country
            ],
            "library": {"name": "analytics.js", "version": "5.2.0"},
        }
        if page is not None:
            context["page"] = {
                "path": page.split("?")[0],
                "url": SITE + page,
                "title": _title(page),
                "referrer": referrer,
                "search": "?" + page.split("?")[1] if "?" in page else "",
            }
        if p.consent is not None:
            context["consent"] = {"categoryPreferences": dict(p.consent)}
        event: dict[str, Any] = {
            "type": kind,
            "messageId": f"ajs-{self.uid()}",
            "anonymousId": p.anonymous_id,
        }
        if p.signed_up_at is not None and at >= p.signed_up_at:
            event["userId"] = p.user_id
        extra_context = fields.pop("context", None)
        if extra_context:
            context.update(extra_context)
        event.update(fields)
        event.update(
            {
                "context": context,
                "timestamp": iso(at),
                "originalTimestamp": iso(at),
                "sentAt": iso(sent),
                "receivedAt": iso(received),
                "version": 2,
            }
        )
        self.world.web_events.append(event)
        self.world.truth.append(("segment", event["messageId"], p.index))
        if self.tracking:
            touch = web_touch(event)
            if touch is not None:
                self.touch(p, at, *touch)
        return event

    def page(
        self, p: Person, at: datetime, path: str, campaign: dict | None = None, referrer: str = ""
    ) -> None:
        if campaign:
            path += ("&" if "?" in path else "?") + "&".join(
                f"utm_{k}={v}"
                for k, v in (
                    ("source", campaign["source"]),
                    ("medium", campaign["medium"]),
                    ("campaign", campaign["name"]),
                )
            )
        extra: dict[str, Any] = {"campaign": campaign} if campaign else {}
        # the referrer is set before the touch is classified: a social network's makes it one
        self.web(
            p,
            at,
            "page",
            path,
            referrer,
            name=_title(path),
            properties={
                "path": path.split("?")[0],
                "url": SITE + path,
                "title": _title(path),
                "referrer": referrer,
            },
            context=extra,
        )

    def track(
        self,
        p: Person,
        at: datetime,
        name: str,
        properties: dict[str, Any],
        page: str | None = None,
    ) -> None:
        self.web(p, at, "track", page, event=name, properties=properties)

    def session(
        self,
        p: Person,
        at: datetime,
        pages: list[str],
        campaign: dict | None = None,
        referrer: str = "",
    ) -> datetime:
        """A visit: pages a few seconds to minutes apart; returns when it ended."""
        for n, path in enumerate(pages):
            self.page(
                p,
                at,
                path,
                campaign if n == 0 else None,
                referrer if n == 0 else SITE + pages[n - 1],
            )
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
            with progress(
                "simulating return visits", total=len(self.world.people), unit="customers"
            ) as step:
                for p in self.world.people:
                    self.rng = random.Random(
                        f"{self.world.seed}:return-visits:{p.index}"
                    )  # each their own
                    at = p.signed_up_at
                    while at is not None:
                        at = at + timedelta(hours=self.rng.expovariate(1 / mean_gap_hours))
                        if not self.live(at) or (p.churned_at is not None and at >= p.churned_at):
                            break
                        if at.weekday() >= 5 and self.rng.random() < 0.4:  # quieter weekends
                            continue
                        self.session(
                            p, at, [self.rng.choice(pages) for _ in range(self.rng.randint(1, 4))]
                        )
                    step.advance()
        finally:
            self.rng = main


def _title(path: str) -> str:
    path = path.split("?")[0]
    return path.strip("/").replace("/", " - ").replace("-", " ").title() or "Home"
