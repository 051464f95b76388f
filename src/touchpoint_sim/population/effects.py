"""What planted incidents change once people have lived: more cases, lower answers, fewer visits."""

from __future__ import annotations

import hashlib
import math
import random
from datetime import UTC, datetime, timedelta

from touchpoint_sim.incidents import FEEDBACK_LOOKBACK_DAYS
from touchpoint_sim.population.records import CrmRecord, iso
from touchpoint_sim.population.service import Service, read_answer
from touchpoint_sim.population.taxonomy import email_category, is_browsing


class Effects(Service):
    """The passes over the lived world that the planted incidents' effects make."""

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
                self.rng = random.Random(
                    f"{self.seed}:incident:{n}:tickets"
                    + (f":{self.first_index}" if self.first_index else "")
                )
                buyers = sorted(
                    (p for p in self.world.people if p.purchased_at is not None and p.contact),
                    key=lambda p: p.index,
                )
                for week in range(incident.week - 1, incident.last_week or self.world.weeks):
                    lo, hi = self.t0 + timedelta(weeks=week), self.t0 + timedelta(weeks=week + 1)
                    for category in incident.categories():
                        opened = sum(
                            1
                            for r in self.records["tickets"]
                            if r.props["hs_ticket_category"] == category and lo <= r.created < hi
                        )
                        for _ in range(_poisson(self.rng, (factor - 1) * opened)):
                            at = self.moment(lo, hi)
                            for _attempt in range(20):
                                p = self.rng.choice(buyers) if buyers else None
                                if (
                                    p is not None
                                    and p.purchased_at is not None
                                    and p.purchased_at < at
                                    and (p.churned_at is None or at < p.churned_at)
                                ):
                                    before = len(self.records["tickets"])
                                    self.tickets(p, at, category, 1)
                                    for rec in self.records["tickets"][before:]:
                                        self.log_change(
                                            incident, "tickets", "tickets", rec.id, p.index
                                        )
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
        for rec in self.records["feedback_submissions"]:
            p = people[rec.person]
            kind = rec.props["hs_survey_type"]
            effect = "nps" if kind == "NPS" else "csat"
            if rec.person not in latest or rec.created >= latest[rec.person].created:
                latest[rec.person] = rec
            value = int(rec.props["hs_value"])
            moved: float = value
            for _, incident in self.active_incidents(effect, rec.created):
                if self.has_met(
                    p, incident, rec.created - timedelta(days=FEEDBACK_LOOKBACK_DAYS), rec.created
                ):
                    moved += incident.effects[effect]
                    self.log_change(incident, effect, "feedback_submissions", rec.id, p.index)
            if moved == value:
                continue
            changed = int(
                max(0, min(10, round(moved))) if kind == "NPS" else max(1, min(5, round(moved)))
            )
            group, comment, _, _ = read_answer(kind, changed, p.hurt_before(rec.created))
            rec.props.update(hs_value=changed, hs_response_group=group, hs_content=comment)
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
            ends = incident.ends(self.world.start)
            cohort = [p for p in self.world.people if self.has_met(p, incident, self.t0, starts)]
            by_anonymous = {p.anonymous_id: p for p in cohort}
            by_email = {p.crm_email: p for p in cohort}
            factor = incident.effects["engagement"]
            key = f"{self.seed}:incident:{n}:engagement"
            dropped: set[str] = set()
            kept_web = []
            since, until = iso(starts), iso(ends) if ends else "~"  # "~" sorts after any time
            for event in self.world.web_events:
                p = by_anonymous.get(event["anonymousId"])
                if (
                    p is not None
                    and since <= event["timestamp"] < until
                    and is_browsing(event)
                    and not _keeps(key, p.index, event["timestamp"][:10], factor)
                ):
                    dropped.add(event["messageId"])
                    self.log_change(incident, "engagement", "segment", event["messageId"], p.index)
                else:
                    kept_web.append(event)
            kept_mail = []
            since_ts, until_ts = starts.timestamp(), ends.timestamp() if ends else float("inf")
            for event in self.world.email_events:
                p = by_email.get(event["email"])
                if (
                    p is not None
                    and event["event"] in ("open", "click")
                    and since_ts <= event["timestamp"] < until_ts
                    and email_category(event) in ("newsletter", "promotion", "renewal")
                    # Apple's proxy fetches the pixel however engaged the reader is
                    and not event.get("sg_machine_open")
                    and not _keeps(key, p.index, _day_of(event["timestamp"]), factor)
                ):
                    if event["sg_event_id"] not in dropped:
                        self.log_change(
                            incident, "engagement", "sendgrid", event["sg_event_id"], p.index
                        )
                    dropped.add(event["sg_event_id"])
                else:
                    kept_mail.append(event)
            self.world.keep_only(kept_web, kept_mail, dropped)


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


def _day_of(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()
