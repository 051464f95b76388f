"""After the purchase: onboarding, support cases, surveys and their answers, upsells, renewals."""

from __future__ import annotations

from datetime import datetime, timedelta

from touchpoint_sim.population.catalog import (
    HELP_PAGES,
    RENEWAL_DAYS,
    SALES_REPS,
    SITE,
    SUCCESS_MANAGERS,
    SUPPORT_AGENTS,
    TICKET_CATEGORIES,
    TICKET_SUBJECTS,
)
from touchpoint_sim.population.journeys import Journeys
from touchpoint_sim.population.records import Person, iso


class Service(Journeys):
    """A customer's life after buying: what they are offered, what goes wrong, what they say."""

    def after_purchase(self, p: Person) -> None:
        rng = self.rng
        bought = p.purchased_at
        assert bought is not None
        if rng.random() < (0.7 if p.company else 0.3):
            booked = self.office(self.later(bought, timedelta(hours=2), timedelta(days=1)))
            start = self.office(self.later(booked, timedelta(days=1), timedelta(days=5)))
            self.meeting(
                p,
                booked,
                start,
                "Onboarding session",
                "Onboarding",
                rng.choice(("Zoom", "Google Meet")),
                rng.choice(SUCCESS_MANAGERS),
            )
        for _ in range(rng.randint(0, 2)):
            self.session(
                p,
                self.later(bought, timedelta(hours=6), timedelta(days=6)),
                [rng.choice(list(HELP_PAGES.values()))],
            )
        survey_at: datetime | None = bought + timedelta(
            days=rng.randint(3, 6), hours=rng.randint(0, 8)
        )
        last = bought
        if rng.random() < 0.4:  # this customer's recurring problem
            p.problem = rng.choices(
                [c[0] for c in TICKET_CATEGORIES], [c[1] for c in TICKET_CATEGORIES]
            )[0]
            count = 1 + (rng.random() < 0.55) + (rng.random() < 0.3)
            if not _HURTS[p.problem]:  # a question or a request, once answered, is not raised again
                count = 1
            last, survey_at = self.tickets(
                p,
                self.later(bought, timedelta(hours=12), timedelta(days=3)),
                p.problem,
                count,
                survey_at,
            )
        if survey_at is not None:
            self.post_purchase_survey(p, survey_at)
        if p.churned_at is None and p.tickets >= 2 and rng.random() < 0.4:  # silent churn
            p.churned_at = self.later(last, timedelta(hours=12), timedelta(days=3))
        if p.churned_at is not None and p.company:
            self.note(
                p,
                self.office(p.churned_at),
                "Churn risk: unhappy after repeated support cases.",
                rng.choice(SUCCESS_MANAGERS),
            )
        happy = p.churned_at is None and (
            p.satisfaction is None or p.satisfaction >= (8 if p.survey_type == "NPS" else 4)
        )
        for _ in range(rng.randint(0, 3)):
            self.recommendation(p, self.later(bought, timedelta(days=1), timedelta(days=14)))
        if rng.random() < 0.12:
            self.live_chat(
                p, self.later(bought, timedelta(days=1), timedelta(days=10)), "account", "/help"
            )
        if rng.random() < 0.15:
            self.webinar(p, self.later(bought, timedelta(days=1), timedelta(days=10)))
        if happy and rng.random() < 0.25:
            self.upsell(p, self.office(self.later(bought, timedelta(days=3), timedelta(days=12))))
        self.renewal(p, bought + timedelta(days=RENEWAL_DAYS))

    def tickets(
        self, p: Person, at: datetime, category: str, count: int, survey_at: datetime | None = None
    ) -> tuple[datetime, datetime | None]:
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
            priority = (
                "HIGH"
                if n >= 1 and category != "FEATURE_REQUEST"
                else rng.choice(("LOW", "MEDIUM", "MEDIUM"))
            )
            ticket = self.record(
                "tickets",
                p,
                at,
                {
                    "subject": subject,
                    "content": f"{subject}. Reported by {p.first.title()} {p.last.title()} "
                    f"via {channel.lower()}.",
                    "hs_pipeline": "0",
                    "hs_pipeline_stage": "1",
                    "hs_ticket_category": category,
                    "hs_ticket_priority": priority,
                    "source_type": channel,
                    "hubspot_owner_id": agent,
                },
            )
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
                ticket.set(
                    self.later(picked, timedelta(minutes=30), timedelta(hours=6)),
                    self.end,
                    hs_pipeline_stage="2",
                )
                self.crm_email(
                    p,
                    picked + timedelta(minutes=20),
                    f"About your case: {subject}",
                    agent,
                    reply=0.8,
                )
            if rng.random() < 0.4:
                self.note(
                    p,
                    picked + timedelta(minutes=5),
                    f"{category.replace('_', ' ').lower()}: {subject}",
                    agent,
                )
            closed = self.office(self.later(picked, timedelta(hours=2), timedelta(hours=36)))
            if not ticket.set(closed, self.end, hs_pipeline_stage="4", closed_date=iso(closed)):
                break
            if rng.random() < 0.6:  # "How did we do?" after the case closed
                self.survey(
                    p,
                    self.later(closed, timedelta(hours=1), timedelta(hours=4)),
                    "CSAT",
                    "srv_csat_support",
                    "Support satisfaction",
                )
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
        sent = self.email(
            p,
            at,
            "survey",
            opens=0.75,
            clicks=0.85,
            unique={"survey_id": survey_id},
            url=f"{SITE}/survey/{survey_id}",
        )
        if sent is None or sent.clicked_at is None or rng.random() < 0.15:
            return
        answered = sent.clicked_at + timedelta(seconds=rng.randint(30, 240))
        if not self.live(answered) or p.contact is None:
            return
        hurt = p.hurt_before(answered)
        if kind == "NPS":
            value = max(
                0, min(10, rng.choice((8, 9, 9, 10, 10, 7)) - (3 * hurt) // 2 + rng.randint(-1, 0))
            )
        else:
            value = max(1, min(5, rng.choice((4, 5, 5)) - hurt // 2 + (rng.random() < 0.3)))
        group, comment, low, high = read_answer(kind, value, hurt)
        rec = self.record(
            "feedback_submissions",
            p,
            answered,
            {
                "hs_survey_type": kind,
                "hs_survey_name": name,
                "hs_survey_id": survey_id,
                "hs_survey_channel": "EMAIL",
                "hs_value": value,
                "hs_response_group": group,
                "hs_content": comment,
                "hs_submission_timestamp": iso(answered),
            },
        )
        self.link("feedback_submissions", rec.id, "contacts", p.contact.id)
        p.survey_type, p.satisfaction = kind, value
        if high and kind == "NPS":
            self.stage(p, answered + timedelta(minutes=5), "evangelist")
        # the moment that cracks it
        if low and hurt and p.churned_at is None and rng.random() < 0.8:
            p.churned_at = self.later(answered, timedelta(hours=2), timedelta(days=2))

    def upsell(self, p: Person, at: datetime) -> None:
        rep = self.rng.choice(SALES_REPS)
        who = p.company.name if p.company else f"{p.first.title()} {p.last.title()}"
        deal = self.deal(
            p,
            at,
            f"Upsell - {who} - extra seats",
            p.plan[1] // 2,
            "existingbusiness",
            "presentationscheduled",
            rep,
        )
        self.call(p, at + timedelta(minutes=10), "Upsell call", "OUTBOUND", rep, deal)
        if deal is not None and self.rng.random() < 0.7:
            self.close(
                deal, self.office(self.later(at, timedelta(days=1), timedelta(days=4))), True, p=p
            )
        elif deal is not None:
            # not now: half stall in the pipeline, half are given up on within weeks (drawn from
            # the deal's own stream, so the person's draws stay as they were)
            moves = self.deal_rng(deal)
            if moves.random() < 0.5:
                self.close(
                    deal,
                    self.working_moment(moves, at, 7, 21),
                    False,
                    moves.choice(("No budget", "Timing", "Chose a competitor")),
                )

    def renewal(self, p: Person, due: datetime) -> None:
        rng = self.rng
        reminder = due - timedelta(days=3)
        if p.contact is None or not self.live(reminder):
            return
        subscription = f"sub_{p.user_id}"
        self.email(
            p,
            reminder,
            "renewal",
            opens=0.6,
            clicks=0.2,
            unique={"subscription_id": subscription},
            url=f"{SITE}/account/subscription",
        )
        who = p.company.name if p.company else f"{p.first.title()} {p.last.title()}"
        deal = self.deal(
            p,
            reminder + timedelta(minutes=5),
            f"Renewal - {who} - {p.plan[0]}",
            p.plan[1],
            "existingbusiness",
            "contractsent",
            rng.choice(SUCCESS_MANAGERS),
        )
        if deal is None:
            return
        if p.churned_at is not None and p.churned_at <= due:
            self.close(deal, due, False, "Churned - dissatisfied")
        else:
            self.close(deal, due, True, p=p)


#: whether a case of the category hurts (a problem, which may come back) or not (a question)
_HURTS = {category: hurt > 0 for category, _, hurt in TICKET_CATEGORIES}


def read_answer(kind: str, value: int, hurt: int) -> tuple[str | None, str, bool, bool]:
    """An NPS (0-10) or CSAT (1-5) answer as the customer means it: its NPS group (None for
    CSAT), the comment they write (``hurt``: see :meth:`Person.hurt_before`), whether it is low
    and whether it is high."""
    if kind == "NPS":
        group: str | None = "promoter" if value >= 9 else "passive" if value >= 7 else "detractor"
        low, high = value <= 6, value >= 9
    else:
        group, low, high = None, value <= 2, value >= 5
    comment = (
        "Same problem again, I am fed up."
        if low and hurt
        else "Not convinced."
        if low
        else "Great product, smooth delivery!"
        if high
        else "Fine overall."
    )
    return group, comment, low, high
