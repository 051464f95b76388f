"""How the warehouse's taxonomy classifies what the simulator emits (for planted incidents)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

#: web pages that are not browsing: an engagement incident keeps them (they are conversions,
#: sign-ups and forms, whose counts other signals read)
_NOT_BROWSING = ("/signup", "/checkout", "/newsletter", "/contact-sales")
EMAIL_TOUCHPOINTS = {
    "newsletter": "newsletter",
    "promotion": "newsletter",  # the weekly offers: the same touchpoint as the newsletter
    "order_confirmation": "order_confirmation",
    "shipping": "delivery_packaging",
    "renewal": "renewals_subscriptions",
    "survey": "post_purchase_survey",
}
#: The warehouse's channel_grouping seed, as far as a social visit goes (a test keeps these the
#: seed's): mediums its rules match before its organic_social rows, the mediums and utm_sources
#: those rows name, and the social networks' referrer hosts.
_EARLIER_MEDIUM = re.compile(
    r"^(cpc|ppc|paid_?search|sem)$|^(paid_?social|social_?paid|social_?ads)$"
    r"|^(display|banner|cpm|retargeting)$|^(e-?mail|newsletter)$",
    re.IGNORECASE,
)
SOCIAL_MEDIUM = r"^(social|organic_?social)$"
SOCIAL_SOURCE = (
    r"^(facebook|fb|instagram|ig|linkedin|twitter|x|pinterest|tiktok|youtube|reddit|threads)$"
)
SOCIAL_HOST = (
    r"(^|\.)(facebook|instagram|linkedin|twitter|pinterest|tiktok|youtube|reddit|threads)\."
    r"|^(t\.co|x\.com|lnkd\.in|youtu\.be|pin\.it)$"
)
TICKET_TOUCHPOINTS = {
    "DELIVERY_ISSUE": "delivery_packaging",
    "PRODUCT_ISSUE": "product_quality",
    "BILLING_ISSUE": "billing_pricing",
}


def email_category(event: dict[str, Any]) -> str | None:
    """SendGrid sends one category as a string, several as an array (ours: the first is the
    kind)."""
    category = event.get("category")
    return category[0] if isinstance(category, list) else category


def is_browsing(event: dict[str, Any]) -> bool:
    if event["type"] == "page":
        return event["context"]["page"]["path"] not in _NOT_BROWSING
    return event["type"] == "track" and event.get("event") == "Product Clicked"


def from_social_network(event: dict[str, Any]) -> bool:
    """Whether a page view arrived from a social network as the warehouse decides it: tagged as
    social, or with a social network as utm_source and a medium that is not paid (nor email);
    untagged, with a social network's referrer."""
    campaign = event["context"].get("campaign") or {}
    medium, source = campaign.get("medium") or "", campaign.get("source") or ""
    if medium or source:
        return bool(re.search(SOCIAL_MEDIUM, medium, re.IGNORECASE)) or (
            bool(re.search(SOCIAL_SOURCE, source, re.IGNORECASE))
            and not _EARLIER_MEDIUM.search(medium)
        )
    host = urlsplit(event["context"]["page"].get("referrer") or "").hostname or ""
    return bool(re.search(SOCIAL_HOST, host, re.IGNORECASE))


def web_touch(event: dict[str, Any]) -> tuple[str, str] | None:
    """The (touchpoint, channel) the taxonomy gives a Segment event (None: not a touchpoint)."""
    kind = event["type"]
    if kind == "track":
        name = event["event"]
        if name in ("Signed Up", "Form Submitted"):
            return "initial_contact", "web_form"
        if name == "Live Chat Started":
            return "live_chat", "chat"
        if name.startswith("Webinar"):
            return "events_webinars", "events"
        if name == "Checkout Started":
            return "purchase_intent", "web"
        if name == "Order Completed":
            return "purchase", "web"
        if name == "Product Clicked":
            recommended = "recommend" in str(event.get("properties", {}).get("list_id", ""))
            return ("personalised_recommendation" if recommended else "product_research"), "web"
        return "website_interaction", "web"
    if kind != "page":
        return None
    campaign = event["context"].get("campaign")
    if campaign and campaign.get("medium") in ("cpc", "ppc", "display", "paid_social"):
        return "online_advertising", "paid_ads"
    if from_social_network(event):
        return "social_media", "social"
    section = (
        event["context"]["page"]["path"].split("/")[1]
        if event["context"]["page"]["path"] != "/"
        else ""
    )
    return {
        "": "website_visit",
        "product": "product_research",
        "pricing": "product_research",
        "search": "product_research",
        "cart": "product_research",
        "reviews": "reviews_read",
        "help": "self_service_help",
        "signup": "initial_contact",
        "checkout": "checkout_page",
    }.get(section, "website_visit"), ("web_form" if section == "signup" else "web")
