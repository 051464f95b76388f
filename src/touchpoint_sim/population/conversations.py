"""The conversations inbox (HubSpot Conversations API v3): threads and their messages on live
chat, Facebook Messenger, email and WhatsApp.

Who writes in: every website live chat (the web's ``Live Chat Started``) opens a live-chat
thread, anonymous when the visitor is not yet a contact (no ``associatedContactId``); every
support case raised by email opens an email thread; some customers (service questions after a
purchase) and some prospects (pre-sales questions) write on WhatsApp or Messenger. An agent
answers after a delay of the channel's kind (minutes on chat, hours by email, within office
hours), or never; the customer may write again; the thread is closed later (closing is a
``THREAD_STATUS_CHANGE`` message, so it moves ``latestMessageTimestamp`` as in HubSpot).

This is a pass over the lived world (:meth:`Conversations.conversations`), after the planted
incidents' passes, each person drawing from a stream of their own: the rest of the world is
byte for byte what it was without it, and messaging is not an incident target
(:data:`touchpoint_sim.incidents.TOUCHPOINT_CHANNELS` does not name it).
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from touchpoint_sim.population.base import Base
from touchpoint_sim.population.catalog import SALES_REPS, SUPPORT_AGENTS
from touchpoint_sim.population.records import ID_BASE, ID_BLOCK, Person, iso

#: HubSpot's generic channel ids, and the simulated account's channel account of each
CHANNELS = {
    "live_chat": ("1000", "148662"),
    "facebook_messenger": ("1001", "148663"),
    "email": ("1002", "148664"),
    "whatsapp": ("1007", "148665"),
}
INBOX_ID = "481939"
#: the first answer's delay (from, to) and the share of threads never answered, by channel
FIRST_ANSWER = {
    "live_chat": (timedelta(seconds=30), timedelta(minutes=12), 0.06),
    "facebook_messenger": (timedelta(minutes=5), timedelta(hours=5), 0.12),
    "whatsapp": (timedelta(minutes=3), timedelta(hours=3), 0.08),
    "email": (timedelta(hours=1), timedelta(hours=22), 0.1),
}
#: the customer's next message after an answer (from, to), and how many they write at most
FOLLOW_UP = {
    "live_chat": (timedelta(seconds=20), timedelta(minutes=4), 5),
    "facebook_messenger": (timedelta(minutes=2), timedelta(hours=6), 4),
    "whatsapp": (timedelta(minutes=2), timedelta(hours=6), 4),
    "email": (timedelta(hours=1), timedelta(days=1), 2),
}
_TEXTS = {
    "pre-sales": ("Hi, does the hub work with my existing sensors?", "What about shipping?"),
    "service": ("Hello, I have a question about my order.", "Thanks, and one more thing."),
    "support": ("Hi, I opened a case, any news?", "It still does not work."),
}
_ANSWER = "Thanks for reaching out, let me check that for you."


class Conversations(Base):
    """Threads and messages of the conversations inbox, made after people have lived."""

    def conversations(self) -> None:
        """Every person's threads, from their live chats, their email cases and a share of
        messaging questions; each person draws from a stream of their own."""
        chats: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for event in self.world.web_events:
            if event.get("event") == "Live Chat Started":
                topic = event["properties"].get("topic", "")
                chats[event["anonymousId"]].append(
                    (datetime.fromisoformat(event["timestamp"]), topic)
                )
        email_cases: dict[int, list[datetime]] = defaultdict(list)
        for ticket in self.records["tickets"]:
            if ticket.props.get("source_type") == "EMAIL":
                email_cases[ticket.person].append(ticket.created)
        for p in self.world.people:
            self.rng = random.Random(f"{self.seed}:person:{p.index}:conversations")
            self._threads_made = 0
            for at, topic in chats.get(p.anonymous_id, []):
                kind = "pre-sales" if topic == "pre-sales" else "service"
                self.thread(p, "live_chat", at + timedelta(seconds=4), kind)
            for created in email_cases.get(p.index, []):
                self.thread(p, "email", created - timedelta(minutes=2), "support")
            self.messaging_questions(p)
        self.world.conversation_threads.sort(key=lambda t: int(t["id"]))

    def messaging_questions(self, p: Person) -> None:
        """WhatsApp and Messenger: service questions after a purchase, pre-sales ones after
        becoming a contact."""
        rng = self.rng
        if p.contact is None:
            return
        if p.purchased_at is not None:
            for channel, share in (("whatsapp", 0.12), ("facebook_messenger", 0.07)):
                if rng.random() < share:
                    at = self.later(p.purchased_at, timedelta(days=1), timedelta(days=20))
                    self.thread(p, channel, at, "service")
        elif rng.random() < 0.06:
            channel = rng.choice(("whatsapp", "facebook_messenger"))
            at = self.later(p.contact.created, timedelta(hours=2), timedelta(days=6))
            self.thread(p, channel, at, "pre-sales")

    def _thread_id(self, p: Person) -> str | None:
        block = ID_BLOCK["conversation_threads"]
        self._threads_made += 1
        if self._threads_made > block:  # a person writing this often: the rest is not kept
            return None
        return str(ID_BASE["conversation_threads"] + p.index * block + self._threads_made)

    def thread(self, p: Person, channel: str, opened: datetime, kind: str) -> None:
        """One thread opened at ``opened``: the customer's messages, the agent's answers, the
        closing; what would happen after the world's end has not happened."""
        rng = self.rng
        if not self.live(opened) or (p.churned_at is not None and opened >= p.churned_at):
            return
        thread_id = self._thread_id(p)
        if thread_id is None:
            return
        opened = opened.replace(microsecond=(opened.microsecond // 1000) * 1000)
        channel_id, account_id = CHANNELS[channel]
        known = p.contact is not None and p.contact.created <= opened
        contact_id = p.contact.id if known and p.contact is not None else None
        # a visitor actor is a contact id; an anonymous visitor has a number of its own
        visitor = f"V-{contact_id or 90_000_000 + p.index}"
        agent = "A-" + rng.choice(SALES_REPS if kind == "pre-sales" else SUPPORT_AGENTS)
        if channel == "email":
            identifier = {"type": "HS_EMAIL_ADDRESS", "value": p.crm_email}
        elif channel == "whatsapp":
            identifier = {"type": "HS_PHONE_NUMBER", "value": f"+3361{p.index:07d}"}
        else:
            identifier = {"type": "CHANNEL_SPECIFIC_OPAQUE_ID", "value": self.hexid(32)}
        customer = {"actorId": visitor, "deliveryIdentifier": identifier}
        messages: list[dict[str, Any]] = []

        def message(
            at: datetime,
            incoming: bool,
            kind_: str = "MESSAGE",
            text: str | None = None,
            actor: str | None = None,
            **extra: Any,
        ) -> None:
            if not self.live(at):
                return
            sender = customer if incoming else {"actorId": actor or agent}
            body: dict[str, Any] = {
                "id": self.hexid(32),
                "conversationsThreadId": thread_id,
                "createdAt": iso(at),
                "updatedAt": iso(at),
                "createdBy": sender["actorId"],
                "client": {"clientType": "HUBSPOT" if not incoming else "SYSTEM"},
                "senders": [sender],
                "recipients": [] if incoming else [customer],
                "archived": False,
                "direction": "INCOMING" if incoming else "OUTGOING",
                "channelId": channel_id,
                "channelAccountId": account_id,
                "type": kind_,
                **extra,
            }
            if text is not None:
                body["text"] = text
            if kind_ == "MESSAGE":
                body |= {
                    "richText": f"<div>{text}</div>",
                    "attachments": [],
                    "truncationStatus": "NOT_TRUNCATED",
                    "status": {"statusType": "RECEIVED" if incoming else "SENT"},
                }
                if channel == "email":
                    body["subject"] = "Your question" if incoming else "Re: Your question"
            messages.append(body)

        if channel == "live_chat":  # the chat widget greets the visitor first
            message(
                opened - timedelta(milliseconds=2),
                False,
                "WELCOME_MESSAGE",
                actor="S-hubspot",
                text="Got any questions? I'm happy to help.",
            )
        lo, hi, never = FIRST_ANSWER[channel]
        follow_lo, follow_hi, most = FOLLOW_UP[channel]
        answered = rng.random() >= never
        writes = rng.randint(1, most)
        at, last = opened, opened
        texts = _TEXTS[kind]
        for n in range(writes):
            message(at, True, text=texts[min(n, len(texts) - 1)])
            last = at
            if not answered:
                break
            wait = lo + (hi - lo) * rng.random() ** 2  # most answers come early
            if n:  # once the agent is on it, the answers come quicker
                wait /= 3
            reply = at + wait
            if channel != "live_chat":
                reply = self.office(reply)
            message(reply, False, text=_ANSWER)
            last = reply
            at = reply + follow_lo + (follow_hi - follow_lo) * rng.random()
        if answered:
            closed: datetime | None = last + (
                timedelta(minutes=rng.randint(5, 30))
                if channel == "live_chat"
                else timedelta(hours=rng.randint(2, 48))
            )
        else:  # unanswered: the team tidies some of these away days later, others stay open
            closed = last + timedelta(days=rng.randint(2, 5)) if rng.random() < 0.5 else None
        if closed is not None:
            closer = agent if answered else "S-hubspot"
            message(closed, False, "THREAD_STATUS_CHANGE", actor=closer, newStatus="ENDED")
        if not any(m["direction"] == "INCOMING" for m in messages):
            return
        thread: dict[str, Any] = {
            "id": thread_id,
            "createdAt": messages[0]["createdAt"],
            "originalChannelId": channel_id,
            "originalChannelAccountId": account_id,
            "spam": False,
            "inboxId": INBOX_ID,
            "archived": False,
        }
        if contact_id is not None:
            thread["associatedContactId"] = contact_id
        state = thread_as_of(thread, messages, None)
        assert state is not None
        thread = state
        self.world.conversation_threads.append(thread)
        self.world.conversation_messages[thread_id] = messages
        self.world.truth.append(("hubspot_conversation_threads", thread_id, p.index))
        self.world.truth.extend(
            ("hubspot_conversation_messages", m["id"], p.index)
            for m in messages
            if m["direction"] == "INCOMING"
        )


#: a thread's fields that follow from its messages (the rest is fixed when it is opened)
_DERIVED = (
    "status",
    "closedAt",
    "latestMessageTimestamp",
    "latestMessageSentTimestamp",
    "latestMessageReceivedTimestamp",
    "assignedTo",
)


def thread_as_of(
    thread: dict[str, Any], messages: list[dict[str, Any]], now_ms: float | None
) -> dict[str, Any] | None:
    """The thread as the API serves it at ``now_ms`` (None: the world's end): its messages so
    far decide its status, latest timestamps and assignee; None before its first message."""
    seen = [
        m
        for m in messages
        if now_ms is None or datetime.fromisoformat(m["createdAt"]).timestamp() * 1000 <= now_ms
    ]
    if not seen:
        return None
    state = {k: v for k, v in thread.items() if k not in _DERIVED}
    state["latestMessageTimestamp"] = max(m["createdAt"] for m in seen)
    answers = [m for m in seen if m["direction"] == "OUTGOING" and m["type"] == "MESSAGE"]
    received = [m["createdAt"] for m in seen if m["direction"] == "INCOMING"]
    if answers:
        state["latestMessageSentTimestamp"] = max(m["createdAt"] for m in answers)
        state["assignedTo"] = min(answers, key=lambda m: m["createdAt"])["senders"][0]["actorId"]
    if received:
        state["latestMessageReceivedTimestamp"] = max(received)
    closings = [m["createdAt"] for m in seen if m["type"] == "THREAD_STATUS_CHANGE"]
    state["status"] = "CLOSED" if closings else "OPEN"
    if closings:
        state["closedAt"] = max(closings)
    return state
