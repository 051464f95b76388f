"""A seeded population of customers living journeys across web, email and CRM.

Same seed, same arguments: byte-for-byte the same world (seeded RNGs, no wall clock). Every
event and CRM object carries the index of the person who produced it, written out as ground
truth for tests.

The world is steady: people arrive over its whole span, at a rate that varies a little from
week to week (:data:`WEEK_NOISE`), less at weekends and at night (:data:`WEEKDAY_WEIGHTS`,
:data:`HOUR_WEIGHTS`). What follows an arrival lags it (a purchase by days to weeks, the answers
and support cases after it by days more), so the first three weeks are a warm-up. Each person
lives from random streams of their own and takes CRM ids from a block of their own, so that a
planted incident (:mod:`touchpoint_sim.incidents`) changes only what the people it touches do
from its week on: the weeks before it are those of the world without it.

What a person can live through, in order:

* awareness: an anonymous first visit, from search, ads (UTM cpc/display/paid_social), social,
  referrals or a partner newsletter; consent choices recorded by the site's consent manager
  (``context.consent.categoryPreferences``) for some visitors;
* consideration: product, pricing, review and search pages, recommendation clicks, live chats,
  webinars;
* sign-up: ``Signed Up`` or ``Form Submitted``, ``identify`` (plus the odd ``alias`` and
  ``group``), and a HubSpot contact; some people use one address on the web and another with
  sales (``hs_additional_emails``), a few were entered twice and merged (``hs_merged_object_ids``);
  some opt out of marketing email;
* purchase: self-serve checkout (``Checkout Started``, ``Order Completed``) or a sales process
  (calls, tasks, notes, 1:1 emails, a sales meeting, a deal through the pipeline);
* onboarding and service: order confirmation and shipping emails, onboarding meetings, support
  tickets whose category recurs, in-store visits;
* loyalty: a post-purchase survey email and its NPS or CSAT answer, renewals and upsells
  (``existingbusiness`` deals), newsletters; dissatisfied customers churn: no more visits or
  opens, and some unsubscribe.

Subscriptions renew every :data:`RENEWAL_DAYS` days, so short simulated periods still show
renewals. Changes that would happen after the world's end have not happened yet: the CRM holds
each object's state at the end, as HubSpot's API only serves the current version.

One module a job: :mod:`.catalog` (the fixed vocabulary), :mod:`.records` (people, companies,
CRM records, the world), :mod:`.base` (shared state, seeded ids and moments), :mod:`.crm`,
:mod:`.web` and :mod:`.mail` (what lands in HubSpot, Segment and SendGrid), :mod:`.people` (who
arrives), :mod:`.journeys` (up to the purchase), :mod:`.service` (after it),
:mod:`.newsletters`, :mod:`.exposure` and :mod:`.effects` (planted incidents, while people live
and afterwards), :mod:`.taxonomy` (how the warehouse classifies what is emitted),
:mod:`.builder` (:func:`generate`: each person's journey, then the passes over the world),
:mod:`.conversations` (the conversations inbox: threads and messages, a pass after the
incidents') and :mod:`.deletions` (objects deleted in the CRM, a pass a caller asks for).
"""

from __future__ import annotations

from touchpoint_sim.population.builder import generate
from touchpoint_sim.population.catalog import (
    ACQUISITION,
    CALL_DISPOSITIONS,
    COMPANY_WORDS,
    COUNTRIES,
    DOMAINS,
    FIRST_NAMES,
    HELP_PAGES,
    HOUR_WEIGHTS,
    INDUSTRIES,
    LAST_NAMES,
    LEGAL_BASIS,
    LIFECYCLE,
    NEWSLETTER_GROUP,
    PLANS,
    PRODUCTS,
    RECOMMENDATION_LIST,
    RENEWAL_DAYS,
    RESEARCH_PAGES,
    SALES_REPS,
    SITE,
    STORE_STAFF,
    STORES,
    SUCCESS_MANAGERS,
    SUPPORT_AGENTS,
    TICKET_CATEGORIES,
    TICKET_SUBJECTS,
    USER_AGENT,
    USER_AGENTS,
    WEEK_NOISE,
    WEEKDAY_WEIGHTS,
)
from touchpoint_sim.population.deletions import delete_objects
from touchpoint_sim.population.records import (
    ASSOCIATION_PAIRS,
    CRM_TYPES,
    ENGAGEMENT_TYPES,
    Company,
    CrmRecord,
    Person,
    World,
    created_property,
    modified_property,
)

__all__ = [
    "ACQUISITION",
    "ASSOCIATION_PAIRS",
    "CALL_DISPOSITIONS",
    "COMPANY_WORDS",
    "COUNTRIES",
    "CRM_TYPES",
    "DOMAINS",
    "ENGAGEMENT_TYPES",
    "FIRST_NAMES",
    "HELP_PAGES",
    "HOUR_WEIGHTS",
    "INDUSTRIES",
    "LAST_NAMES",
    "LEGAL_BASIS",
    "LIFECYCLE",
    "NEWSLETTER_GROUP",
    "PLANS",
    "PRODUCTS",
    "RECOMMENDATION_LIST",
    "RENEWAL_DAYS",
    "RESEARCH_PAGES",
    "SALES_REPS",
    "SITE",
    "STORES",
    "STORE_STAFF",
    "SUCCESS_MANAGERS",
    "SUPPORT_AGENTS",
    "TICKET_CATEGORIES",
    "TICKET_SUBJECTS",
    "USER_AGENT",
    "USER_AGENTS",
    "WEEKDAY_WEIGHTS",
    "WEEK_NOISE",
    "Company",
    "CrmRecord",
    "Person",
    "World",
    "created_property",
    "delete_objects",
    "generate",
    "modified_property",
]
