"""CRM writes: HubSpot objects, engagements and associations, and their state at the end."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from touchpoint_sim.population.base import Base
from touchpoint_sim.population.catalog import CALL_DISPOSITIONS, DEAL_CURRENCY, LIFECYCLE
from touchpoint_sim.population.records import (
    CRM_TYPES,
    ENGAGEMENT_TYPES,
    ID_BASE,
    ID_BLOCK,
    ID_BLOCK_DEFAULT,
    CrmRecord,
    Person,
    iso,
)
from touchpoint_sim.population.taxonomy import TICKET_TOUCHPOINTS


class Crm(Base):
    """Objects made, changed and linked in the CRM; a change after the world's end never happens."""

    def next_id(self, object_type: str, person: int) -> str:
        """The next id in the person's own block of ids for this type (slices never collide)."""
        key = "engagements" if object_type in ENGAGEMENT_TYPES else object_type
        block = ID_BLOCK.get(key, ID_BLOCK_DEFAULT)
        used = self._used[(key, person)] = self._used.get((key, person), 0) + 1
        if used > block:
            raise RuntimeError(
                f"person {person} made more than {block} CRM {key}: the id block is full"
            )
        return str(ID_BASE[key] + person * block + used)

    def record(
        self,
        object_type: str,
        person: Person,
        created: datetime,
        props: dict[str, Any],
        object_id: str | None = None,
    ) -> CrmRecord:
        rec = CrmRecord(
            object_type,
            object_id or self.next_id(object_type, person.index),
            person.index,
            created,
            props,
        )
        self.records[object_type].append(rec)
        if self.tracking and object_type in ("tickets", "feedback_submissions", "contacts"):
            if object_type == "tickets":
                category = props["hs_ticket_category"]
                self.touch(
                    person,
                    created,
                    TICKET_TOUCHPOINTS.get(category, "customer_support"),
                    "support",
                    category,
                )
            elif object_type == "contacts":
                self.touch(person, created, "initial_contact", "web_form")
            else:
                self.touch(person, created, "post_purchase_survey", "survey")
        return rec

    def link(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        targets = self.world.associations[(from_type, to_type)].setdefault(from_id, [])
        if to_id not in targets:
            targets.append(to_id)

    def engage(
        self,
        kind: str,
        p: Person,
        at: datetime,
        props: dict[str, Any],
        owner: str,
        deal: CrmRecord | None = None,
        created: datetime | None = None,
    ) -> CrmRecord | None:
        """An engagement (call, meeting, note, email, task) on the person's contact."""
        created = created or at
        if p.contact is None or not self.live(created) or created < p.contact.created:
            return None
        rec = self.record(
            kind, p, created, {"hs_timestamp": iso(at), **props, "hubspot_owner_id": owner}
        )
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

    def new_contact(
        self, p: Person, created: datetime, source: str, lifecycle: str, legal: str
    ) -> CrmRecord:
        props: dict[str, Any] = {
            "email": p.crm_email,
            "firstname": p.first.title(),
            "lastname": p.last.title(),
            "lifecyclestage": lifecycle,
            "hs_analytics_source": source,
            "country": p.country,
            "hs_email_optout": False,
            "hs_legal_basis": legal,
        }
        if p.second_email:
            props["hs_additional_emails"] = p.email
        contact = self.record("contacts", p, created, props, object_id=p.contact_id)
        p.contact = contact
        if p.company:
            p.company.contacts.append(contact)
            self.link("contacts", contact.id, "companies", p.company.record.id)
        return contact

    def call(
        self,
        p: Person,
        at: datetime,
        title: str,
        direction: str,
        owner: str,
        deal=None,
        outcome: str = "connected",
    ) -> CrmRecord | None:
        duration = (
            self.rng.randint(120, 1500) if outcome == "connected" else self.rng.randint(5, 40)
        ) * 1000
        status = {
            "connected": "COMPLETED",
            "left_voicemail": "COMPLETED",
            "no_answer": "NO_ANSWER",
            "busy": "BUSY",
        }[outcome]
        rec = self.engage(
            "calls",
            p,
            at,
            {
                "hs_call_title": title,
                "hs_call_direction": direction,
                "hs_call_duration": duration,
                "hs_call_status": status,
                "hs_call_disposition": CALL_DISPOSITIONS[outcome],
            },
            owner,
            deal,
            created=at
            + timedelta(milliseconds=duration)
            + timedelta(seconds=self.rng.randint(5, 300)),
        )
        # notes added later
        if rec is not None and outcome == "connected" and self.rng.random() < 0.2:
            rec.set(
                self.later(rec.created, timedelta(minutes=5), timedelta(days=2)),
                self.end,
                hs_call_body=f"<p>{title}: discussed needs and next steps.</p>",
            )
        return rec

    def meeting(
        self,
        p: Person,
        booked: datetime,
        start: datetime,
        title: str,
        activity: str,
        location: str,
        owner: str,
        deal=None,
        show: float = 0.85,
        cancel: float = 0.07,
    ) -> tuple[CrmRecord | None, bool]:
        """Book a meeting; it happens (or not) at ``start``. Returns the record and whether it
        took place."""
        minutes = self.rng.choice((30, 45, 60))
        finish = start + timedelta(minutes=minutes)
        rec = self.engage(
            "meetings",
            p,
            start,
            {
                "hs_meeting_title": title,
                "hs_meeting_outcome": "SCHEDULED",
                "hs_meeting_location": location,
                "hs_activity_type": activity,
                "hs_meeting_start_time": iso(start),
                "hs_meeting_end_time": iso(finish),
            },
            owner,
            deal,
            created=booked,
        )
        if rec is None:
            return None, False
        roll = self.rng.random()
        if roll < cancel:
            rec.set(self.moment(booked, start), self.end, hs_meeting_outcome="CANCELED")
            return rec, False
        outcome = "COMPLETED" if roll < cancel + show else "NO_SHOW"
        if (
            rec.set(
                finish + timedelta(minutes=self.rng.randint(1, 120)),
                self.end,
                hs_meeting_outcome=outcome,
            )
            and self.tracking
            and outcome == "COMPLETED"
        ):
            self.touch(
                p,
                start,
                *(
                    ("in_store_experience", "store")
                    if activity == "In-store visit"
                    else ("onboarding", "meeting")
                    if activity == "Onboarding"
                    else ("sales_interaction", "meeting")
                ),
            )
        return rec, outcome == "COMPLETED" and self.live(finish)

    def note(self, p: Person, at: datetime, body: str, owner: str, deal=None) -> None:
        rec = self.engage("notes", p, at, {"hs_note_body": f"<p>{body}</p>"}, owner, deal)
        if rec is not None and self.rng.random() < 0.15:  # edited later
            rec.set(
                self.later(at, timedelta(minutes=10), timedelta(days=3)),
                self.end,
                hs_note_body=f"<p>{body}</p><p>Update: followed up as agreed.</p>",
            )

    def crm_email(
        self, p: Person, at: datetime, subject: str, owner: str, deal=None, reply: float = 0.0
    ) -> None:
        self.engage(
            "emails",
            p,
            at,
            {"hs_email_direction": "EMAIL", "hs_email_subject": subject, "hs_email_status": "SENT"},
            owner,
            deal,
        )
        if self.rng.random() < reply:
            answer = self.later(at, timedelta(hours=1), timedelta(days=2))
            self.engage(
                "emails",
                p,
                answer,
                {
                    "hs_email_direction": "INCOMING_EMAIL",
                    "hs_email_subject": f"RE: {subject}",
                    "hs_email_status": "SENT",
                },
                owner,
                deal,
            )

    def task(
        self,
        p: Person,
        at: datetime,
        subject: str,
        kind: str,
        owner: str,
        done_at: datetime | None,
        deal=None,
    ) -> None:
        rec = self.engage(
            "tasks",
            p,
            at,
            {
                "hs_task_subject": subject,
                "hs_task_status": "NOT_STARTED",
                "hs_task_type": kind,
                "hs_task_priority": "MEDIUM",
            },
            owner,
            deal,
        )
        if rec is not None:
            rec.props["hs_timestamp"] = iso(at + timedelta(days=1))  # the due date
            if done_at is not None:
                rec.set(done_at, self.end, hs_task_status="COMPLETED")

    def deal(
        self,
        p: Person,
        created: datetime,
        name: str,
        amount: int,
        dealtype: str,
        stage: str,
        owner: str,
    ) -> CrmRecord | None:
        if p.contact is None or not self.live(created):
            return None
        rec = self.record(
            "deals",
            p,
            created,
            {
                "dealname": name,
                "amount": amount,
                "dealstage": stage,
                "pipeline": "default",
                "closedate": iso(created + timedelta(days=21)),
                "dealtype": dealtype,
                "hubspot_owner_id": owner,
                "deal_currency_code": DEAL_CURRENCY,
                # HubSpot's calculated stage history: the stage it was created in is entered then
                f"hs_date_entered_{stage}": iso(created),
            },
        )
        self.link("deals", rec.id, "contacts", p.contact.id)
        if p.company:
            self.link("deals", rec.id, "companies", p.company.record.id)
        if self.tracking:
            self.touch(p, created, "sales_interaction", "sales")
        return rec

    def deal_rng(self, deal: CrmRecord) -> random.Random:
        """The deal's own stream for how it moves through the pipeline (skipped stages, stalls):
        drawing from it leaves the person's stream, and so the rest of the world, as it was."""
        return random.Random(f"{self.seed}:deal:{deal.id}")

    @staticmethod
    def working_moment(
        moves: random.Random, after: datetime, lo_days: int, hi_days: int
    ) -> datetime:
        """A working-hours moment lo_days to hi_days after ``after``, drawn from ``moves`` only
        (``office`` would draw from the person's stream)."""
        at = (after + timedelta(days=moves.randint(lo_days, hi_days))).replace(
            hour=moves.randint(9, 17), minute=moves.randint(0, 59), second=0, microsecond=0
        )
        return at + timedelta(days=max(0, 7 - at.weekday()) if at.weekday() >= 5 else 0)

    def move(self, deal: CrmRecord, at: datetime, stage: str, **props: Any) -> bool:
        """Move the deal to ``stage`` at ``at``, as HubSpot records it: ``dealstage`` and the
        calculated ``hs_date_exited_<old stage>`` / ``hs_date_entered_<stage>`` (the latest
        entry and exit of each stage it passed through; a skipped stage gets neither)."""
        old = deal.props["dealstage"]
        if old == stage:
            return deal.set(at, self.end, **props)
        return deal.set(
            at,
            self.end,
            dealstage=stage,
            **{f"hs_date_exited_{old}": iso(at), f"hs_date_entered_{stage}": iso(at)},
            **props,
        )

    def close(
        self,
        deal: CrmRecord,
        at: datetime,
        won: bool,
        reason: str | None = None,
        p: Person | None = None,
    ) -> bool:
        props: dict[str, Any] = {"closedate": iso(at)}
        if reason:
            props["closed_lost_reason"] = reason
        done = self.move(deal, at, "closedwon" if won else "closedlost", **props)
        if done and won and self.tracking and p is not None:
            name = deal.props["dealname"]
            self.touch(
                p,
                at,
                "upgrade"
                if name.startswith("Upsell")
                else "renewals_subscriptions"
                if deal.props["dealtype"] == "existingbusiness"
                else "purchase",
                "sales",
            )
        return done

    def finish(self) -> None:
        """Settle companies, then write every CRM object as the API serves it at the world's end."""
        for company in self.companies:
            if not company.contacts:
                continue
            first = min(company.contacts, key=lambda c: (c.created, int(c.id)))
            company.record.person = first.person
            company.record.created = company.record.modified = first.created + timedelta(seconds=5)
            company.record.props["createdate"] = iso(company.record.created)
            if self.rng.random() < 0.4:  # enriched later
                company.record.set(
                    self.later(company.record.created, timedelta(hours=1), timedelta(days=6)),
                    self.end,
                    numberofemployees=self.rng.choice((5, 12, 40, 150, 800)),
                )
            self.records["companies"].append(company.record)
        for object_type in CRM_TYPES:
            records = sorted(self.records[object_type], key=lambda r: int(r.id))
            self.world.crm[object_type] = [r.as_hubspot() for r in records]
            self.world.truth.extend((f"hubspot_{object_type}", r.id, r.person) for r in records)
