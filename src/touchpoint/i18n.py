"""The languages the report is written in: gettext catalogs, one per language, in
``reports/locales/<language>/LC_MESSAGES/touchpoint.po`` beside the templates.

English is the source language (the message ids). The ``.po`` files are read and compiled in
memory when first used, so a translator edits one text file and nothing binary is kept in git.
``make i18n`` (touchpoint.report.catalogs) extracts the messages and merges them into each
catalog: a new message arrives untranslated, which the catalog test
(tests/report/test_report_languages.py) refuses.

Terms are the names the data brings (touchpoints, channels, journey stages, case categories,
attribution models): their message id is the key with spaces ('delivery packaging'), taken
from the dbt seeds and the models' declarations, so a new touchpoint in the taxonomy is a new
message to translate. A value the catalog does not know (a ticket category a CRM admin added)
is shown as it comes.
"""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "touchpoint"
SOURCE_LANGUAGE = "en"
#: the languages a report can be written in (the company's own, Italian, first)
LANGUAGES = ("it", "fr", "en")


def N_(message: str) -> str:
    """Marks ``message`` for extraction; it is translated where it is shown."""
    return message


def term_id(term: str) -> str:
    """The message id of a data term: 'delivery_packaging' -> 'delivery packaging',
    'DELIVERY_ISSUE' -> 'delivery issue'."""
    return term.replace("_", " ").lower() if term.isupper() else term.replace("_", " ")


def language_of(locale: str) -> str:
    """A locale's language when a catalog speaks it (fr_FR -> fr), English otherwise (de_DE)."""
    try:
        language = Locale.parse(locale).language
    except (ValueError, UnknownLocaleError):
        return SOURCE_LANGUAGE
    return language if language in LANGUAGES else SOURCE_LANGUAGE


def catalog_path(locales_dir: Path, language: str) -> Path:
    return locales_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=16)
def translations(locales_dir: Path, language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (English: the message ids themselves). A fuzzy
    entry is not used: it is a translator's guess, not yet a translation."""
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    path = catalog_path(locales_dir, language)
    with path.open("rb") as f:
        catalog = read_po(f, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
