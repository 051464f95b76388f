"""The simulated world's fixed vocabulary: names, channels, products, staff and rhythms."""

from __future__ import annotations

FIRST_NAMES = (
    "ana",
    "ben",
    "chloe",
    "david",
    "emma",
    "farid",
    "grace",
    "hugo",
    "ines",
    "jules",
    "karin",
    "liam",
    "maya",
    "noah",
    "olga",
    "paul",
    "quinn",
    "rosa",
    "sami",
    "tara",
)
LAST_NAMES = (
    "martin",
    "bernard",
    "dubois",
    "thomas",
    "robert",
    "richard",
    "petit",
    "durand",
    "leroy",
    "moreau",
    "simon",
    "laurent",
    "lefebvre",
    "michel",
    "garcia",
    "david",
)
DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
COUNTRIES = ("FR", "DE", "GB", "US", "ES")
STORES = {
    "FR": ("Store - Lyon", "Store - Paris"),
    "DE": ("Store - Berlin",),
    "GB": ("Store - London",),
    "US": ("Store - New York",),
    "ES": ("Store - Madrid",),
}

#: (hubspot original source, utm medium, utm source, utm campaign, referrer, weight)
ACQUISITION = (
    ("ORGANIC_SEARCH", None, None, None, "https://www.google.com/", 0.30),
    ("PAID_SEARCH", "cpc", "google", "brand_search", "https://www.google.com/", 0.17),
    ("OTHER_CAMPAIGNS", "display", "criteo", "retargeting_q4", "", 0.08),
    ("PAID_SOCIAL", "paid_social", "facebook", "autumn_sale", "https://l.facebook.com/", 0.10),
    ("SOCIAL_MEDIA", None, None, None, "https://www.instagram.com/", 0.07),
    ("REFERRALS", None, None, None, "https://www.trustpilot.com/", 0.08),
    ("EMAIL_MARKETING", "email", "partner_newsletter", "partner_oct", "", 0.06),
    ("DIRECT_TRAFFIC", None, None, None, "", 0.14),
)
#: The campaigns of the tagged acquisitions (utm_campaign, weight): several per source, so that
#: traffic by campaign has something to compare. A source not listed keeps ACQUISITION's one.
CAMPAIGNS = {
    "PAID_SEARCH": (("brand_search", 0.5), ("generic_smart_home", 0.3), ("competitor_terms", 0.2)),
    "OTHER_CAMPAIGNS": (("retargeting_q4", 0.6), ("prospecting_q4", 0.4)),
    "PAID_SOCIAL": (("autumn_sale", 0.5), ("black_friday", 0.3), ("hub_pro_launch", 0.2)),
    "EMAIL_MARKETING": (("partner_oct", 0.5), ("partner_nov", 0.5)),
}
#: How a SOCIAL_MEDIA arrival reaches the site: (context.page.referrer, utm source, utm medium,
#: utm campaign, weight). Browsers send a cross-site referrer as its origin only (the default
#: strict-origin-when-cross-origin policy): the networks' link shims (l.facebook.com,
#: l.instagram.com, t.co, lnkd.in) show as such; t.co's full link where the policy lets it.
#: Tagged posts carry UTM parameters (a non-paid medium: organic, not online advertising).
SOCIAL_ARRIVALS = (
    ("https://www.instagram.com/", None, None, None, 0.18),
    ("https://l.facebook.com/", None, None, None, 0.16),
    ("https://m.facebook.com/", None, None, None, 0.06),
    ("https://t.co/", None, None, None, 0.06),
    ("https://t.co/{shortlink}", None, None, None, 0.03),
    ("https://www.linkedin.com/", None, None, None, 0.07),
    ("https://lnkd.in/", None, None, None, 0.03),
    ("https://www.reddit.com/", None, None, None, 0.05),
    ("https://www.youtube.com/", None, None, None, 0.04),
    ("https://www.pinterest.com/", None, None, None, 0.03),
    ("https://l.instagram.com/", "instagram", "social", "winter_tips", 0.14),
    ("https://l.facebook.com/", "facebook", "social", "community_stories", 0.07),
    ("", "linkedin", "social", "hub_pro_launch", 0.05),
    ("https://www.youtube.com/", "youtube", "video", "unboxing_hub_pro", 0.03),
)
PRODUCTS = (  # (product id, sku, name, slug, price)
    ("prod_101", "HUB-MINI", "Hub Mini", "hub-mini", 49.0),
    ("prod_102", "HUB-PRO", "Hub Pro", "hub-pro", 129.0),
    ("prod_103", "SENS-4", "Sensor Pack", "sensor-pack", 79.0),
    ("prod_104", "PLUG-2", "Smart Plug Duo", "smart-plug-duo", 39.0),
    ("prod_105", "CAM-360", "Camera 360", "camera-360", 159.0),
)
PLANS = (("Starter", 290), ("Pro", 990), ("Business", 2490))
RESEARCH_PAGES = (
    "/product",
    "/product/features",
    "/product/integrations",
    "/pricing",
    "/reviews",
    "/search",
)
HELP_PAGES = {
    "BILLING_ISSUE": "/help/billing",
    "DELIVERY_ISSUE": "/help/delivery",
    "PRODUCT_ISSUE": "/help/troubleshooting",
    "GENERAL_INQUIRY": "/help/account",
    "FEATURE_REQUEST": "/help",
}
TICKET_CATEGORIES = (  # (category, weight, how much a case hurts satisfaction)
    ("DELIVERY_ISSUE", 0.30, 2),
    ("PRODUCT_ISSUE", 0.30, 2),
    ("BILLING_ISSUE", 0.20, 2),
    ("GENERAL_INQUIRY", 0.14, 0),
    ("FEATURE_REQUEST", 0.06, 0),
)
TICKET_SUBJECTS = {
    "DELIVERY_ISSUE": (
        "Parcel not delivered",
        "Package arrived damaged",
        "Delivery later than promised",
    ),
    "PRODUCT_ISSUE": ("Hub stops syncing", "App crashes at login", "Sensor arrived defective"),
    "BILLING_ISSUE": (
        "Charged twice for my order",
        "Invoice shows the wrong VAT number",
        "Refund not received",
    ),
    "GENERAL_INQUIRY": (
        "How do I change my plan?",
        "Question about my account",
        "Where is my invoice?",
    ),
    "FEATURE_REQUEST": (
        "Please add CSV export",
        "Dark mode for the app",
        "Support for more sensors",
    ),
}
SALES_REPS = ("61000001", "61000002", "61000003")
#: the company sells in one currency (HubSpot's deal_currency_code on every deal)
DEAL_CURRENCY = "EUR"
#: why a deal that stalled after the contract was sent is closed lost weeks later
STALLED_LOST_REASONS = ("Timing", "No decision", "Went dark")
SUCCESS_MANAGERS = ("61000011", "61000012")
SUPPORT_AGENTS = ("61000021", "61000022", "61000023")
STORE_STAFF = ("61000031", "61000032")
CALL_DISPOSITIONS = {  # HubSpot's default call outcome ids
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "left_voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "no_answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
}
LEGAL_BASIS = (
    "Legitimate interest – prospect/lead",
    "Freely given consent from contact",
    "Performance of a contract",
)
LIFECYCLE = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
)
COMPANY_WORDS = (
    ("Blue", "North", "Bright", "Silver", "Green", "Red", "Nova", "Alpine", "Coastal", "Urban"),
    ("Harbor", "Peak", "Field", "Stone", "River", "Oak", "Wave", "Ridge", "Forge", "Lane"),
    ("Logistics", "Studio", "Foods", "Labs", "Retail", "Partners", "Energy", "Health", "Travel"),
)
INDUSTRIES = (
    "RETAIL",
    "COMPUTER_SOFTWARE",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "FOOD_PRODUCTION",
    "HOSPITAL_HEALTH_CARE",
    "CONSTRUCTION",
    "HOSPITALITY",
    "MARKETING_AND_ADVERTISING",
)
USER_AGENTS = (
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/130.0 Safari/537.36"
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko)"
        " Version/18.0 Safari/605.1.15"
    ),
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Mobile/15E148"
    ),
)
USER_AGENT = USER_AGENTS[0]
SITE = "https://www.touchpoint-shop.example"
NEWSLETTER_GROUP = 4242  # SendGrid unsubscribe group (ASM) of the newsletter
RENEWAL_DAYS = 14
RECOMMENDATION_LIST = "recommended_for_you"

#: Arrivals: relative weight of each weekday (Monday first) and of each UTC hour
WEEKDAY_WEIGHTS = (1.0, 1.05, 1.05, 1.0, 0.9, 0.65, 0.6)
HOUR_WEIGHTS = (
    0.3,
    0.2,
    0.15,
    0.1,
    0.1,
    0.15,
    0.3,
    0.6,
    0.9,
    1.1,
    1.3,
    1.4,
    1.4,
    1.3,
    1.1,
    1.0,
    1.0,
    1.05,
    1.15,
    1.3,
    1.4,
    1.35,
    1.0,
    0.6,
)
#: week-to-week spread of the arrival rate (the log of a week's multiplier is normal, this sd)
WEEK_NOISE = 0.08
#: Mail: the share of recipients reading on Apple Mail with Mail Privacy Protection, whose
#: every delivered message Apple's proxy fetches ("opens") soon after delivery
MACHINE_OPEN_SHARE = 0.3
#: the user agent SendGrid records for an Apple proxy fetch (no device detail: that is the point)
MACHINE_OPEN_USER_AGENT = "Mozilla/5.0"
#: Mail: the share of messages a receiving server blocks (SendGrid `bounce` with `type: blocked`)
BLOCKED_SHARE = 0.01
#: SendGrid's bounce_classification of a block, with relative weights
BLOCK_CLASSIFICATIONS = (
    ("Reputation", 0.4),
    ("Technical", 0.3),
    ("Content", 0.2),
    ("Frequency or Volume", 0.1),
)
