"""A world built person by person: each journey in order, then the passes over the whole world."""

from __future__ import annotations

import random
from datetime import date, timedelta

from touchpoint.progress import progress
from touchpoint_sim.incidents import Incident, check_incidents
from touchpoint_sim.population.catalog import ACQUISITION, CAMPAIGNS, PRODUCTS, SOCIAL_ARRIVALS
from touchpoint_sim.population.conversations import Conversations
from touchpoint_sim.population.effects import Effects
from touchpoint_sim.population.newsletters import Newsletters
from touchpoint_sim.population.people import People
from touchpoint_sim.population.records import Person, World, iso


class _Builder(Effects, Newsletters, People, Conversations):
    """Every part of a world together: :meth:`build` makes one."""

    def build(self) -> World:
        people = [
            self.person(index)
            for index in range(self.first_index, self.first_index + self.customers)
        ]
        self.world.people.extend(people)
        with progress("simulating journeys", total=len(people), unit="customers") as step:
            for person in people:
                # Each person lives from a stream of their own: what changes for one person (an
                # incident) never moves the draws of anyone else.
                self.rng = random.Random(f"{self.seed}:person:{person.index}")
                self.journey(person)
                step.advance()
        self.more_cases()
        self.return_visits()
        self.lower_answers()
        self.less_engagement()
        self.after_churn()
        self.conversations()  # after the incidents' passes: from streams of its own
        self.rng = random.Random(
            f"{self.seed}:finish" + (f":{self.first_index}" if self.first_index else "")
        )
        self.finish()
        self.world.web_events.sort(key=lambda e: e["timestamp"])
        self.world.email_events.sort(key=lambda e: e["timestamp"])
        return self.world

    def arrival_tags(self, p: Person) -> tuple[dict | None, str, str | None]:
        """The first visit's UTM campaign (or None), referrer and, for a tagged social post, its
        landing page, by the person's acquisition: which campaign, which social network. Drawn
        from a stream of the person's own, so that the person's other draws are what they were
        without it."""
        rng = random.Random(f"{self.seed}:person:{p.index}:arrival")
        source, medium, utm_source = p.acquisition
        row = next(a for a in ACQUISITION if a[0] == source)
        referrer = row[4]
        name = row[3]
        landing = None
        if source in CAMPAIGNS:
            names, weights = zip(*CAMPAIGNS[source], strict=True)
            name = rng.choices(names, weights)[0]
        if source == "SOCIAL_MEDIA":
            referrer, utm_source, medium, name, _ = rng.choices(
                SOCIAL_ARRIVALS, [a[4] for a in SOCIAL_ARRIVALS]
            )[0]
            referrer = referrer.format(shortlink=f"{rng.getrandbits(40):010x}")
            landing = rng.choice(("/", "/product", "/product/" + rng.choice(PRODUCTS)[3]))
        campaign = {"source": utm_source, "medium": medium, "name": name} if medium else None
        return campaign, referrer, landing

    def journey(self, p: Person) -> None:
        rng = self.rng
        campaign, referrer, social_landing = self.arrival_tags(p)
        medium = campaign["medium"] if campaign else None
        if campaign and medium == "cpc":
            campaign["term"] = rng.choice(("smart home hub", "home sensors", "wifi camera"))
        landing = social_landing or (
            rng.choice(("/", "/product", "/pricing", "/product/" + rng.choice(PRODUCTS)[3]))
            if campaign
            else "/"
        )
        at = self.session(
            p, p.arrived_at, [landing, *self.research_pages(rng.randint(0, 3))], campaign, referrer
        )
        for _ in range(rng.randint(1, 3)):  # consideration: research visits over the next days
            at = self.later(at, timedelta(hours=1), timedelta(hours=rng.choice((4, 20, 48))))
            at = self.session(p, at, self.research_pages(rng.randint(1, 4)))
            if rng.random() < 0.1:
                at = self.recommendation(p, at)
            if rng.random() < 0.07:
                self.live_chat(p, at, "pre-sales", "/pricing")
        if not p.signs_up:
            if rng.random() < 0.2:  # met in a store: the CRM knows them, the web never will
                self.store_contact(
                    p, self.office(self.later(at, timedelta(hours=2), timedelta(days=5)))
                )
            return
        at = self.later(at, timedelta(minutes=5), timedelta(days=2))
        if not self.live(at):
            return
        form = self.signup(p, at)
        if rng.random() < 0.12:
            self.webinar(p, self.later(at, timedelta(hours=1), timedelta(days=4)))
        if rng.random() < 0.05:  # a question before buying: a general inquiry ticket
            self.tickets(
                p, self.later(at, timedelta(hours=3), timedelta(days=3)), "GENERAL_INQUIRY", 1
            )
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

    # -- the end ----------------------------------------------------------------------------
    def after_churn(self) -> None:
        """Churned customers are gone: drop the visits, opens and clicks generated for them past the
        moment they churned (emails sent before it and read later, visits planned before it)."""
        gone_web = {p.anonymous_id: iso(p.churned_at) for p in self.world.people if p.churned_at}
        gone_mail = {
            p.crm_email: p.churned_at.timestamp() for p in self.world.people if p.churned_at
        }
        dropped: set[str] = set()
        kept_web = []
        for event in self.world.web_events:
            if (
                event["anonymousId"] in gone_web
                and event["timestamp"] >= gone_web[event["anonymousId"]]
            ):
                dropped.add(event["messageId"])
            else:
                kept_web.append(event)
        kept_mail = []
        for event in self.world.email_events:
            if (
                event["event"] in ("open", "click")
                and event["email"] in gone_mail
                and event["timestamp"] >= gone_mail[event["email"]]
            ):
                dropped.add(event["sg_event_id"])
            else:
                kept_mail.append(event)
        self.world.keep_only(kept_web, kept_mail, dropped)


def generate(
    customers: int,
    weeks: int,
    seed: int,
    start: date,
    return_visits_per_week: float = 0.0,
    first_index: int = 0,
    incidents: tuple[Incident, ...] | list[Incident] = (),
) -> World:
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
    return _Builder(
        customers, weeks, seed, start, return_visits_per_week, first_index, tuple(incidents)
    ).build()
