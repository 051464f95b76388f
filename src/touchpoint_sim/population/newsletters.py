"""The newsletter programme: Tuesday newsletters, Friday offers, and what each reader does."""

from __future__ import annotations

from datetime import timedelta

from touchpoint_sim.population.catalog import NEWSLETTER_GROUP, SITE
from touchpoint_sim.population.mail import Mail
from touchpoint_sim.population.records import Person
from touchpoint_sim.population.web import Web


class Newsletters(Web, Mail):
    """Marketing email to those who subscribed, read, clicked, left or reported as spam."""

    def newsletters(self, p: Person) -> None:
        rng = self.rng
        # What this reader will do with the marketing email, and after how many of them.
        fate = rng.choices(
            ("read", "unsubscribe", "group_unsubscribe", "spamreport"), (0.76, 0.1, 0.11, 0.03)
        )[0]
        patience = rng.randint(0, 3)
        received = 0
        for week, day in ((w, d) for w in range(self.world.weeks) for d in (1, 4)):
            # Tuesdays: the newsletter; Fridays: the offers of the week.
            send_at = self.t0 + timedelta(
                weeks=week, days=day, hours=9, seconds=rng.randint(0, 900)
            )
            if (
                not p.newsletter
                or p.contact is None
                or p.contact.created >= send_at
                or (p.bounced_at is not None and p.bounced_at <= send_at)
            ):
                continue
            if (p.email_optout_at is not None and p.email_optout_at <= send_at) or any(
                a <= send_at < b for a, b in p.newsletter_paused
            ):
                continue
            campaign_id = f"nl-{week + 1:03d}" if day == 1 else f"offers-{week + 1:03d}"
            url = (
                f"{SITE}/product?utm_source=newsletter&utm_medium=email&utm_campaign={campaign_id}"
            )
            # The newsletter names its issue by ISO week (a unique argument); the offers are a
            # promotion campaign of their own category.
            year, iso_week, _ = send_at.isocalendar()
            unique = (
                {"campaign_id": campaign_id, "newsletter_issue": f"{year}-w{iso_week:02d}"}
                if day == 1
                else {"campaign_id": campaign_id}
            )
            sent = self.email(
                p,
                send_at,
                "newsletter" if day == 1 else "promotion",
                opens=0.35,
                clicks=0.3,
                unique=unique,
                url=url,
                group=NEWSLETTER_GROUP,
            )
            if sent is None or not sent.delivered:
                continue
            received += 1
            churned = p.churned_at is not None and p.churned_at <= send_at
            if sent.clicked_at is not None:
                self.session(
                    p,
                    sent.clicked_at + timedelta(seconds=3),
                    ["/product", *self.research_pages(1)],
                    {"source": "newsletter", "medium": "email", "name": campaign_id},
                )
            when = (
                sent.opened_at + timedelta(seconds=30)
                if sent.opened_at
                else self.later(send_at, timedelta(minutes=5), timedelta(hours=20))
            )
            if churned and rng.random() < 0.5:  # the unhappy leave the list too
                self.unsubscribe(p, when, sent, globally=rng.random() < 0.5)
            elif fate == "spamreport" and received > patience:
                self.spam_report(p, when, sent)
            elif fate != "read" and received > patience:
                self.unsubscribe(p, when, sent, globally=fate == "unsubscribe")
                fate = "read"
