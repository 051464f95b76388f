"""Email events as SendGrid's webhook posts them: delivery, opens, clicks, unsubscribes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from touchpoint_sim.population.base import Base
from touchpoint_sim.population.catalog import (
    BLOCK_CLASSIFICATIONS,
    BLOCKED_SHARE,
    MACHINE_OPEN_SHARE,
    MACHINE_OPEN_USER_AGENT,
    NEWSLETTER_GROUP,
    SITE,
)
from touchpoint_sim.population.records import Person
from touchpoint_sim.population.taxonomy import EMAIL_TOUCHPOINTS, email_category


@dataclass
class Sent:
    message_id: str
    delivered: bool
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    #: what SendGrid repeats on every event of the message: categories, unique arguments, group
    fields: dict[str, Any] = field(default_factory=dict)


class Mail(Base):
    """Email sent to a person and what became of it, as webhook events in the world."""

    def email(
        self,
        p: Person,
        at: datetime,
        category: str,
        opens: float,
        clicks: float = 0.3,
        unique: dict[str, Any] | None = None,
        url: str = SITE + "/product",
        group: int | None = None,
    ) -> Sent | None:
        if not self.live(at):
            return None
        message_id = self.hexid(22)
        smtp_id = f"<{message_id}@ismtpd0001p1lon1.sendgrid.net>"
        # SendGrid sends `category` as a string for one category, an array for several.
        cat: Any = category if self.rng.random() < 0.5 else [category, "touchpoint"]
        base: dict[str, Any] = {
            "email": p.crm_email,
            "sg_message_id": f"{message_id}.filter0001",
            "smtp-id": smtp_id,
            "category": cat,
        }
        if group is not None:
            base["asm_group_id"] = group
        base.update(unique or {})  # unique arguments arrive as top-level keys
        ts = int(at.timestamp())
        sent = Sent(message_id, delivered=False, fields=_message_fields(base))
        # What the earlier simulator did not emit (blocks, machine opens) draws from a stream of
        # the message's own: the person's stream, and the world around it, stay as they were.
        own = random.Random(f"{self.seed}:message:{message_id}")
        bounced = p.bounced_at is not None and p.bounced_at <= at
        if bounced or self.rng.random() < 0.015:
            reason = "Bounced Address" if bounced else "Invalid SMTPAPI header"
            self._emit(
                p, {**base, "event": "dropped", "reason": reason, "timestamp": ts}, with_id=False
            )
            return sent
        self._emit(p, {**base, "event": "processed", "timestamp": ts})
        if self.rng.random() < 0.03:
            self._emit(
                p,
                {
                    **base,
                    "event": "deferred",
                    "response": "421 4.7.0 Try again later",
                    "attempt": "1",
                    "timestamp": ts + 1,
                },
            )
            ts += self.rng.randint(300, 1800)
        if self.rng.random() < 0.02:
            p.bounced_at = at if p.bounced_at is None else min(p.bounced_at, at)
            self._emit(
                p,
                {
                    **base,
                    "event": "bounce",
                    "type": "bounce",
                    "status": "5.1.1",
                    "reason": "550 5.1.1 The email account that you tried to reach does not exist",
                    "bounce_classification": "Invalid Address",
                    "timestamp": ts + 3,
                },
            )
            return sent
        if own.random() < BLOCKED_SHARE:
            # a soft bounce: the receiving server refused this message, not the address (SendGrid
            # adds the address to its blocks, and later mail is sent)
            names, weights = zip(*BLOCK_CLASSIFICATIONS, strict=True)
            self._emit(
                p,
                {
                    **base,
                    "event": "bounce",
                    "type": "blocked",
                    "status": "5.7.1",
                    "reason": "554 5.7.1 Service unavailable; client host blocked by a blocklist",
                    "bounce_classification": own.choices(names, weights)[0],
                    "timestamp": ts + 3,
                },
                rng=own,
            )
            return sent
        self._emit(
            p, {**base, "event": "delivered", "response": "250 2.0.0 OK", "timestamp": ts + 2}
        )
        sent.delivered = True
        if self.reads_on_apple_mail(p):
            # Mail Privacy Protection: Apple's proxy fetches the tracking pixel of every message
            # delivered, whether or not its reader ever looks at it (SendGrid: sg_machine_open)
            fetched = ts + 2 + own.randint(20, 1800)
            self._emit(
                p,
                {
                    **base,
                    "event": "open",
                    "useragent": MACHINE_OPEN_USER_AGENT,
                    "ip": f"17.{own.randint(56, 58)}.{own.randint(0, 255)}.{own.randint(1, 254)}",
                    "sg_machine_open": True,
                    "timestamp": fetched,
                },
                rng=own,
            )
        churned = p.churned_at is not None and at >= p.churned_at
        if not churned and self.rng.random() < opens:
            opened = self.later(at, timedelta(minutes=2), timedelta(hours=30))
            if self.live(opened):
                sent.opened_at = opened
                self._emit(
                    p,
                    {
                        **base,
                        "event": "open",
                        "useragent": p.user_agent,
                        "ip": p.ip,
                        "sg_machine_open": False,
                        "timestamp": int(opened.timestamp()),
                    },
                )
                if self.rng.random() < clicks:
                    sent.clicked_at = opened + timedelta(seconds=self.rng.randint(5, 120))
                    self._emit(
                        p,
                        {
                            **base,
                            "event": "click",
                            "url": url,
                            "url_offset": {"index": 0, "type": "html"},
                            "useragent": p.user_agent,
                            "ip": p.ip,
                            "timestamp": int(sent.clicked_at.timestamp()),
                        },
                    )
        return sent

    def reads_on_apple_mail(self, p: Person) -> bool:
        """Whether ``p`` reads on Apple Mail with Mail Privacy Protection (fixed per person,
        from a stream of its own)."""
        return random.Random(f"{self.seed}:apple-mail:{p.index}").random() < MACHINE_OPEN_SHARE

    def _emit(
        self,
        p: Person,
        event: dict[str, Any],
        with_id: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        rng = rng or self.rng
        if with_id:
            event["sg_event_id"] = f"{rng.getrandbits(88):022x}"
        if event["timestamp"] >= int(self.end.timestamp()):
            return
        self.world.email_events.append(event)
        self.world.truth.append(("sendgrid", event.get("sg_event_id") or "", p.index))
        machine = bool(event.get("sg_machine_open"))
        if self.tracking and event["event"] in ("delivered", "open", "click") and not machine:
            category = email_category(event)
            if category in EMAIL_TOUCHPOINTS:
                self.touch(
                    p,
                    datetime.fromtimestamp(event["timestamp"], UTC),
                    EMAIL_TOUCHPOINTS[category],
                    "email",
                )
        if rng.random() < 0.02:  # at-least-once delivery: the same event twice
            self.world.email_events.append(dict(event))

    def opt_out(self, p: Person, at: datetime) -> None:
        if p.email_optout_at is None and self.live(at):
            p.email_optout_at = at
            if p.contact is not None:
                p.contact.set(max(at, p.contact.created), self.end, hs_email_optout=True)

    def unsubscribe(self, p: Person, at: datetime, sent: Sent, globally: bool) -> None:
        base = {
            "email": p.crm_email,
            "sg_message_id": f"{sent.message_id}.filter0001",
            **sent.fields,
            "timestamp": int(at.timestamp()),
        }
        if globally:
            self._emit(p, {**base, "event": "unsubscribe"})
            self.opt_out(p, at)
        else:
            url = SITE + "/email/preferences"
            self._emit(
                p,
                {
                    **base,
                    "event": "group_unsubscribe",
                    "asm_group_id": NEWSLETTER_GROUP,
                    "useragent": p.user_agent,
                    "ip": p.ip,
                    "url": url,
                },
            )
            back = (
                self.later(at, timedelta(days=1), timedelta(days=6))
                if self.rng.random() < 0.5
                else None
            )
            if back is not None and self.live(back) and (p.churned_at is None):
                self._emit(
                    p,
                    {
                        **base,
                        "event": "group_resubscribe",
                        "asm_group_id": NEWSLETTER_GROUP,
                        "useragent": p.user_agent,
                        "ip": p.ip,
                        "url": url,
                        "timestamp": int(back.timestamp()),
                    },
                )
                p.newsletter_paused.append((at, back))
            else:
                p.newsletter_paused.append((at, self.end))

    def spam_report(self, p: Person, at: datetime, sent: Sent) -> None:
        """The reader reports ``sent`` as spam, and is sent no more marketing email."""
        self._emit(
            p,
            {
                "email": p.crm_email,
                "sg_message_id": f"{sent.message_id}.filter0001",
                **sent.fields,
                "event": "spamreport",
                "timestamp": int(at.timestamp()),
            },
        )
        self.opt_out(p, at)


def _message_fields(base: dict[str, Any]) -> dict[str, Any]:
    """The fields SendGrid repeats on a message's later events (unsubscribes, spam reports):
    its categories, unique arguments and unsubscribe group, not its SMTP envelope."""
    return {k: v for k, v in base.items() if k not in ("email", "sg_message_id", "smtp-id")}
