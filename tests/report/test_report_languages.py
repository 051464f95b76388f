"""The report in its readers' languages: catalogs complete and in step with the templates and
code, and every word a reader sees passing through them.

The second check renders with a marking pseudo-language: every translated message comes back
wrapped in ⟦ ⟧. Whatever text is left outside the marks must be data (names, numbers, dates,
keys): an English word there is a string that bypasses gettext."""

from __future__ import annotations

import gettext
import html as html_lib
import re
from pathlib import Path

import pytest
from babel.dates import get_day_names, get_month_names
from babel.messages.pofile import read_po

import touchpoint.report.render as render
from helpers.report_content import content, quiet_content
from touchpoint.delivery.recipients import Recipient, Slice
from touchpoint.i18n import LANGUAGES, SOURCE_LANGUAGE, catalog_path, language_of, translations
from touchpoint.report.catalogs import extract, untranslated
from touchpoint.report.render import (
    DataQualityAlert,
    TaskFailure,
    render_alert,
    render_task_failure,
    render_weekly_report,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "reports" / "templates"
LOCALES = REPO / "reports" / "locales"
TRANSLATED = [lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _catalog(language: str):
    with catalog_path(LOCALES, language).open("rb") as f:
        return read_po(f, locale=language)


def _ids(catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


@pytest.fixture(scope="module")
def extracted():
    return extract(REPO)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_of_the_report_is_translated(language, extracted):
    catalog = _catalog(language)
    missing = _ids(extracted) - _ids(catalog)
    assert not missing, f"{language}: not in the catalog (run make i18n): {sorted(missing)[:10]}"
    stale = _ids(catalog) - _ids(extracted)
    assert not stale, f"{language}: no longer used (run make i18n): {sorted(stale)[:10]}"
    empty = list(untranslated(catalog))
    assert not empty, f"{language}: {len(empty)} untranslated, e.g. {empty[:10]}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders_of_their_message(language):
    wrong = []
    for message in _catalog(language):
        if not message.id:
            continue
        ids = (message.id,) if isinstance(message.id, str) else message.id
        strings = (message.string,) if isinstance(message.string, str) else message.string
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            # a plural's singular may leave its count out ('un cliente'), nothing else
            if set(PLACEHOLDER.findall(string)) not in (wanted, wanted - {"%(num)s", "%(num)d"}):
                wrong.append((ids[0], string))
            if re.search(r"%(?!\(\w+\)[sd]|%)", string):
                wrong.append((ids[0], string))
    assert not wrong, f"{language}: {wrong[:5]}"


def test_a_recipient_reads_their_locales_language_unless_they_choose():
    assert [language_of(loc) for loc in ("it_IT", "fr_FR", "fr_CH", "en_US", "de_DE")] == [
        "it",
        "fr",
        "fr",
        "en",
        "en",
    ]
    assert Recipient("a@example.com", "A", locale="fr_FR").reads == "fr"
    assert Recipient("a@example.com", "A", locale="fr_FR", language="it").reads == "it"


class Marked(gettext.NullTranslations):
    """A pseudo-language: every message it translates comes back between ⟦ and ⟧."""

    def gettext(self, message):
        return f"⟦{message}⟧"

    def ngettext(self, singular, plural, n):
        return f"⟦{singular if n == 1 else plural}⟧"


@pytest.fixture
def marked(monkeypatch):
    """Renders for a recipient whose language is the marking one."""
    real = render.translations

    def pseudo(locales_dir, language):
        return Marked() if language == "xx" else real(locales_dir, language)

    monkeypatch.setattr(render, "translations", pseudo)
    render._environment_for.cache_clear()
    render._wording_for.cache_clear()
    yield Recipient("a@example.com", "Alex Reader", "Europe/Rome", "en_GB", language="xx")
    render._environment_for.cache_clear()
    render._wording_for.cache_clear()


def _outside_marks(text: str) -> str:
    """The text at depth 0 of the ⟦ ⟧ marks (a value formatted into a message is inside it)."""
    depth, kept = 0, []
    for char in text:
        if char == "⟦":
            depth += 1
        elif char == "⟧":
            depth -= 1
        elif depth == 0:
            kept.append(char)
    return "".join(kept)


def _visible(html: str) -> str:
    """What a reader sees of an HTML body: its text and its images' alt texts."""
    body = re.sub(r"(?s)<style.*?</style>|<title>.*?</title>", "", html)
    alts = " ".join(re.findall(r'alt="([^"]*)"', body))
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", body) + " " + alts)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]{2,}", text))


def _data_words(*values: str) -> set[str]:
    """Words the data brings: names, keys, months and days of the locale, product names."""
    months = get_month_names("abbreviated", locale="en_GB").values()
    full_months = get_month_names("wide", locale="en_GB").values()
    days = get_day_names("abbreviated", locale="en_GB").values()
    return _words(" ".join([*values, *months, *full_months, *days]))


#: not words of a language: the product, the scores' names, the time zone's and the pipeline's
FIXED = ("touchpoint", "CSAT", "NPS", "UTC", "DAG", "pt", "AM", "PM")


def _bypassing(text: str, data: set[str]) -> set[str]:
    return _words(_outside_marks(text)) - data


def test_every_word_of_the_weekly_report_goes_through_the_catalogs(marked):
    for report in (content(), quiet_content()):
        keys = [s.key for s in report.shown_signals] + [
            f"trend-{s.slug}" for s in report.shown_signals
        ]  # the text names a chart by its anchor
        data = _data_words(
            *FIXED,
            marked.name,
            report.iso_week,
            marked.timezone,
            *keys,
            *(c.name for c in report.at_risk.named),
            *(c.company or "" for c in report.at_risk.named),
            *(v.text for v in report.verbatims),
            # campaign names, traffic sources and lost reasons are the sources' own words
            *(c.campaign for c in report.commercial.campaigns.all),
            *(f"{s.source} {s.medium}" for s in report.commercial.traffic.sources),
            *(r.reason for r in report.commercial.pipeline.lost_reasons),
            f"touchpoint-kpis-{report.iso_week}.csv",
        )
        rendered = render_weekly_report(report, marked, TEMPLATES)
        for part, text in (
            ("subject", rendered.subject),
            ("text", rendered.text),
            ("html", _visible(rendered.html)),
            ("csv", rendered.attachments[0].data.decode().splitlines()[0]),
        ):
            assert not _bypassing(text, data), (part, _bypassing(text, data))


def test_every_word_of_the_alerts_goes_through_the_catalogs(marked):
    alert = DataQualityAlert(
        "2026-10-05T00:00:00+00:00",
        "2026-10-06T00:00:00+00:00",
        [
            {
                "severity": "critical",
                "rule_id": "fct_touchpoints.key_unique",
                "expectation": "expect_column_values_to_be_unique",
                "column": "touchpoint_key",
                "observed": "2 unexpected",
            }
        ],
        None,
    )
    failure = TaskFailure(
        "touchpoint_ingest",
        "extract_crm",
        "manual__2026",
        "2026-10-05",
        "2026-10-06",
        3,
        3,
        "RuntimeError: boom",
        None,
        None,
        params_start="2026-10-05",
    )
    data = _data_words(
        *FIXED,
        marked.name,
        "fct_touchpoints key_unique expect_column_values_to_be_unique touchpoint_key unexpected",
        "touchpoint_ingest extract_crm manual RuntimeError boom",
        "dq validation_runs expectation_results",
    )
    for message in (
        render_alert(alert, marked, TEMPLATES),
        render_task_failure(failure, marked, TEMPLATES),
    ):
        for part, text in (
            ("subject", message.subject),
            ("text", message.text),
            ("html", _visible(message.html)),
        ):
            assert not _bypassing(text, data), (part, _bypassing(text, data))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_report_renders_in_every_language(language):
    reader = Recipient("a@example.com", "A", "Europe/Rome", "it_IT", Slice("EMEA"), language)
    rendered = render_weekly_report(content(), reader, TEMPLATES)
    words = translations(LOCALES, language)
    heading = words.gettext("Needs attention")
    assert heading in rendered.html and heading.upper() in rendered.text
    assert f'lang="{language}"' in rendered.html
    assert words.gettext("delivery packaging") in rendered.text
    if language != SOURCE_LANGUAGE:
        assert heading != "Needs attention"
