"""Journeys up to the purchase: sign-up, store visits, webinars, self-serve and sales-led buying."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from touchpoint_sim.population.catalog import (
    PRODUCTS,
    RECOMMENDATION_LIST,
    SALES_REPS,
    SITE,
    STALLED_LOST_REASONS,
    STORE_STAFF,
    STORES,
)
from touchpoint_sim.population.crm import Crm
from touchpoint_sim.population.exposure import Exposure
from touchpoint_sim.population.mail import Mail
from touchpoint_sim.population.records import ID_BASE, ID_BLOCK_DEFAULT, CrmRecord, Person, iso
from touchpoint_sim.population.web import Web


class Journeys(Crm, Web, Mail, Exposure):
    """The steps of a person's way to a purchase, across the web, email and the CRM."""

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
            booked = max(
                self.later(at, -timedelta(days=3), -timedelta(hours=2)),
                p.contact.created + timedelta(minutes=1),
            )
        self.meeting(
            p,
            booked or at,
            at,
            f"Visit at {location.split(' - ')[1]}",
            "In-store visit",
            location,
            self.rng.choice(STORE_STAFF),
            show=0.9,
            cancel=0.03,
        )

    def signup(self, p: Person, at: datetime) -> str:
        rng = self.rng
        p.signed_up_at = at
        form = rng.choices(("account", "newsletter", "contact_sales"), (0.72, 0.12, 0.16))[0]
        page = (
            "/signup"
            if form == "account"
            else "/newsletter"
            if form == "newsletter"
            else "/contact-sales"
        )
        self.page(p, at - timedelta(seconds=20), page)  # anonymous until the form is sent
        if form == "account":
            self.track(p, at, "Signed Up", {"method": "email", "plan": p.plan[0].lower()}, page)
        else:
            self.track(
                p,
                at,
                "Form Submitted",
                {"form_id": f"form_{form}", "form_name": form.replace("_", " ").title()},
                page,
            )
        traits: dict[str, Any] = {
            "email": p.email,
            "firstName": p.first.title(),
            "lastName": p.last.title(),
            "createdAt": iso(at),
        }
        if p.company:
            traits["company"] = {"name": p.company.name}
        self.web(p, at + timedelta(seconds=1), "identify", page, traits=traits)
        if rng.random() < 0.1:  # the site's old tracking code also aliases the anonymous id
            self.web(p, at + timedelta(seconds=2), "alias", page, previousId=p.anonymous_id)
        if p.company and rng.random() < 0.6:
            self.web(
                p,
                at + timedelta(seconds=3),
                "group",
                page,
                groupId=f"grp_{p.company.record.id}",
                traits={
                    "name": p.company.name,
                    "industry": p.company.industry,
                    "website": p.company.domain,
                },
            )
        p.newsletter = p.marketing_ok and (form == "newsletter" or rng.random() < 0.7)
        legal = (
            "Freely given consent from contact"
            if p.newsletter
            else "Legitimate interest – prospect/lead"
        )
        source = p.acquisition[0]
        contact = self.new_contact(
            p,
            at + timedelta(seconds=rng.randint(20, 90)),
            source,
            "subscriber" if form == "newsletter" else "lead",
            legal,
        )
        if not p.marketing_ok and rng.random() < 0.5:  # opted out of all email at sign-up
            p.email_optout_at = contact.created
            contact.props["hs_email_optout"] = True
        if rng.random() < 0.3:  # edited later by sales (phone, job title...)
            contact.set(
                self.later(contact.created, timedelta(hours=1), timedelta(days=10)),
                self.end,
                jobtitle=rng.choice(("Owner", "Office manager", "IT lead", "Buyer")),
            )
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
        duplicate = str(ID_BASE["merged"] + p.index * ID_BLOCK_DEFAULT + 1)
        p.merged_contact_ids.append(duplicate)
        contact.set(merged_at, self.end, hs_merged_object_ids=duplicate)
        # The call logged on the duplicate now hangs off the surviving contact.
        self.call(
            p,
            self.later(contact.created, timedelta(minutes=30), timedelta(hours=2)),
            "Intro call",
            "OUTBOUND",
            self.rng.choice(SALES_REPS),
        )

    def recommendation(self, p: Person, at: datetime) -> datetime:
        """A visit where the person clicks a personalised recommendation."""
        at = self.session(p, at, ["/"])
        product = self.rng.choice(PRODUCTS)
        self.track(
            p,
            at,
            "Product Clicked",
            {
                "product_id": product[0],
                "sku": product[1],
                "name": product[2],
                "price": product[4],
                "position": self.rng.randint(1, 6),
                "list_id": RECOMMENDATION_LIST,
                "list_name": "Recommended for you",
            },
            "/",
        )
        return self.session(
            p,
            self.later(at, timedelta(seconds=1), timedelta(seconds=4)),
            [f"/product/{product[3]}"],
            referrer=SITE + "/",
        )

    def live_chat(self, p: Person, at: datetime, topic: str, page: str) -> None:
        self.track(
            p, at, "Live Chat Started", {"chat_id": "chat_" + self.hexid(12), "topic": topic}, page
        )

    def webinar(self, p: Person, at: datetime) -> None:
        """Register for the next webinar (Thursdays 16:00 UTC) and maybe attend it."""
        thursday = (at + timedelta(days=(3 - at.weekday()) % 7)).replace(
            hour=16, minute=0, second=0, microsecond=0
        )
        if thursday <= at:
            thursday += timedelta(weeks=1)
        webinar_id = f"web_{thursday:%Y%m%d}"
        name = self.rng.choice(
            (
                "Getting started with your smart home",
                "Automations that save energy",
                "What's new this month",
            )
        )
        self.page(p, at - timedelta(seconds=40), "/webinars")
        self.track(
            p,
            at,
            "Webinar Registered",
            {"webinar_id": webinar_id, "webinar_name": name},
            "/webinars",
        )
        if self.rng.random() < 0.6:
            self.track(
                p,
                thursday + timedelta(minutes=self.rng.randint(0, 8)),
                "Webinar Attended",
                {
                    "webinar_id": webinar_id,
                    "webinar_name": name,
                    "duration_minutes": self.rng.randint(10, 55),
                },
            )
            self.stage(p, thursday + timedelta(hours=2), "marketingqualifiedlead")

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
        item = {
            "product_id": product[0],
            "sku": product[1],
            "name": product[2],
            "price": product[4],
            "quantity": quantity,
        }
        self.track(
            p,
            at,
            "Checkout Started",
            {
                "order_id": order_id,
                "value": revenue,
                "revenue": revenue,
                "currency": "EUR",
                "products": [item],
            },
            "/checkout",
        )
        if rng.random() < 0.25 or not self.live(at + timedelta(minutes=4)):  # abandoned cart
            return
        # abandoned too, because of an incident
        if self.purchase_blocked(p, at, "orders", order_id):
            return
        done = self.later(at, timedelta(minutes=1), timedelta(minutes=6))
        self.track(
            p,
            done,
            "Order Completed",
            {
                "order_id": order_id,
                "total": revenue,
                "revenue": revenue,
                "tax": round(revenue * 0.2, 2),
                "shipping": 0.0,
                "currency": "EUR",
                "products": [item],
            },
            "/checkout",
        )
        p.purchased_at = done
        self.stage(p, done + timedelta(minutes=2), "customer")
        self.order_emails(p, done, order_id)

    def order_emails(self, p: Person, at: datetime, order_id: str) -> None:
        self.email(
            p,
            at + timedelta(minutes=1),
            "order_confirmation",
            opens=0.8,
            clicks=0.1,
            unique={"order_id": order_id},
            url=f"{SITE}/account/orders/{order_id}",
        )
        shipped = self.later(at, timedelta(hours=18), timedelta(days=2))
        self.email(
            p,
            shipped,
            "shipping",
            opens=0.7,
            clicks=0.4,
            unique={"order_id": order_id, "stage": "shipped"},
            url=f"https://tracking.carrier.example/{order_id}",
        )
        self.email(
            p,
            self.later(shipped, timedelta(days=1), timedelta(days=3)),
            "shipping",
            opens=0.5,
            clicks=0.05,
            unique={"order_id": order_id, "stage": "delivered"},
            url=f"{SITE}/account/orders/{order_id}",
        )

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
            outcome = rng.choices(
                ("connected", "no_answer", "left_voicemail", "busy"), (0.55, 0.2, 0.2, 0.05)
            )[0]
            self.call(
                p,
                t,
                "Discovery call" if attempt == 0 else "Follow-up call",
                "OUTBOUND",
                rep,
                outcome=outcome,
            )
            if outcome == "connected":
                connected_at = t
                break
        self.task(
            p,
            contact.created + timedelta(minutes=rng.randint(1, 20)),
            f"Call {p.first.title()} {p.last.title()}",
            "CALL",
            rep,
            connected_at,
        )
        if connected_at is None or not self.live(connected_at):
            self.note(
                p, t + timedelta(minutes=5), "Could not reach the lead; will retry next week.", rep
            )
            return
        self.stage(p, connected_at, "salesqualifiedlead")
        who = p.company.name if p.company else f"{p.first.title()} {p.last.title()}"
        deal = self.deal(
            p,
            connected_at + timedelta(minutes=rng.randint(5, 40)),
            f"{who} - {p.plan[0]}",
            p.plan[1],
            "newbusiness",
            "appointmentscheduled",
            rep,
        )
        if deal is None:
            return
        self.stage(p, deal.created, "opportunity")
        self.note(p, deal.created, f"Interested in the {p.plan[0]} plan; demo booked.", rep, deal)
        start = self.office(self.later(deal.created, timedelta(hours=20), timedelta(days=3)))
        _, held = self.meeting(
            p,
            deal.created,
            start,
            f"Demo: {who}",
            "Sales meeting",
            rng.choice(("Zoom", "Google Meet")),
            rep,
            deal,
        )
        # how the deal moves is drawn from its own stream: the person's draws stay as they were
        moves = self.deal_rng(deal)
        # some reps skip a step (HubSpot lets any stage follow any other): no qualification
        # call of its own, no decision maker's sign-off recorded
        skip_qualification, skip_sign_off = moves.random() < 0.15, moves.random() < 0.2
        if not skip_qualification:
            self.move(deal, deal.created + timedelta(hours=1), "qualifiedtobuy")
        if not held:
            self.close(deal, start + timedelta(days=2), False, "No show")
            return
        t = start + timedelta(hours=1)
        self.move(deal, t, "presentationscheduled")
        proposal = self.office(self.later(t, timedelta(hours=2), timedelta(days=1)))
        self.crm_email(p, proposal, f"Your {p.plan[0]} proposal", rep, deal, reply=0.6)
        if not skip_sign_off:
            self.move(deal, proposal, "decisionmakerboughtin")
        contract = self.office(self.later(proposal, timedelta(hours=12), timedelta(days=2)))
        if not self.move(deal, contract, "contractsent"):
            return
        self.task(
            p,
            contract,
            "Follow up on the contract",
            "EMAIL",
            rep,
            self.office(self.later(contract, timedelta(days=1), timedelta(days=3))),
            deal,
        )
        if rng.random() < 0.5:
            self.call(
                p,
                self.office(self.later(contract, timedelta(hours=3), timedelta(days=2))),
                "Contract questions",
                rng.choice(("OUTBOUND", "INBOUND")),
                rep,
                deal,
            )
        decided = self.office(self.later(contract, timedelta(hours=4), timedelta(days=3)))
        roll = rng.random()
        if roll < 0.25:
            self.close(
                deal, decided, False, rng.choice(("Price", "Chose a competitor", "No budget"))
            )
        elif roll < 0.85 and self.purchase_blocked(p, decided, "deals", deal.id):
            self.close(deal, decided, False, "Chose a competitor")
        elif roll < 0.85 and self.close(deal, decided, True, p=p):
            p.purchased_at = decided
            self.stage(p, decided, "customer")
            self.order_emails(p, decided, f"ord_{self.hexid(10)}")
        elif roll >= 0.85 and moves.random() < 0.5:
            # stalled: no answer to the contract, and the rep gives up on it weeks later
            self.close(
                deal,
                self.working_moment(moves, contract, 10, 28),
                False,
                moves.choice(STALLED_LOST_REASONS),
            )
