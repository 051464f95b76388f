"""The report's catalogs kept in step with its code (``make i18n``): every message of the
report's templates and code, and every data term the marts can name, extracted and merged into
each language's ``.po`` file (touchpoint.i18n reads them)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from touchpoint.i18n import DOMAIN, LANGUAGES, SOURCE_LANGUAGE, catalog_path, term_id, translations
from touchpoint.sources.deal_stages import deal_pipeline_stages
from touchpoint.transform.project import attribution_models

#: where the report's code and templates sit under the repository root, for extraction
_EXTRACTED = (
    ("src/touchpoint/report", "python"),
    ("src/touchpoint/delivery", "python"),
    ("reports/templates", "jinja2"),
)
_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "plural": (1, 2), "N_": None}
#: HubSpot's default ticket categories, the taxonomy's own (DELIVERY_ISSUE) and the staging
#: model's fallback: the case categories the catalogs name
CASE_CATEGORIES = (
    "BILLING_ISSUE",
    "DELIVERY_ISSUE",
    "FEATURE_REQUEST",
    "GENERAL_INQUIRY",
    "PRODUCT_ISSUE",
    "UNCATEGORISED",
)


_HEADER = """\
# The touchpoint report in language '%(language)s'. make i18n keeps its messages in step with
# the templates and code; an empty msgstr fails tests/report/test_report_languages.py."""
#: the catalogs' dates: fixed, so that a run of ``make i18n`` changes only what changed
_STABLE_DATE = datetime(2026, 12, 1, tzinfo=UTC)


def _seed_column(dbt_project_dir: Path, seed: str, column: str) -> set[str]:
    with (dbt_project_dir / "seeds" / f"{seed}.csv").open(newline="") as f:
        return {row[column] for row in csv.DictReader(f) if row[column]}


def terms(dbt_project_dir: Path) -> list[str]:
    """Every data term a report names: the taxonomy's touchpoints, channels and journey stages,
    the session channels, the business units, the case categories, the attribution models and
    the deal pipeline's stages."""
    found = (
        _seed_column(dbt_project_dir, "touchpoint_taxonomy", "touchpoint")
        | _seed_column(dbt_project_dir, "touchpoint_taxonomy", "channel")
        | _seed_column(dbt_project_dir, "touchpoint_taxonomy", "journey_stage")
        | _seed_column(dbt_project_dir, "channel_grouping", "session_channel")
        | _seed_column(dbt_project_dir, "business_units", "business_unit")
        | set(CASE_CATEGORIES)
        | set(attribution_models(dbt_project_dir))
        | {stage.label for stage in deal_pipeline_stages(dbt_project_dir)}
    )
    return sorted({term_id(t) for t in found})


def extract(root: Path) -> Catalog:
    """The template catalog: the messages of the report's templates and code, and the terms."""
    catalog = Catalog(
        domain=DOMAIN, project="touchpoint", charset="utf-8", creation_date=_STABLE_DATE
    )
    for folder, method in _EXTRACTED:
        method_map = [("**.py", "python")] if method == "python" else [("**", "jinja2")]
        options = {"**": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                          "lstrip_blocks": "true"}} if method == "jinja2" else {}  # fmt: skip
        for filename, lineno, message, comments, context in extract_from_dir(
            root / folder, method_map, options_map=options, keywords=_KEYWORDS
        ):
            catalog.add(
                message,
                locations=[(f"{folder}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    for term in terms(root / "dbt_project"):
        catalog.add(term, auto_comments=["a data term (dbt seeds, case categories, models)"])
    return catalog


def update_catalogs(root: Path) -> dict[str, list[str]]:
    """Merges the extracted messages into each language's catalog (new ones untranslated,
    dropped ones removed) and returns each language's untranslated messages."""
    template = extract(root)
    locales_dir = root / "reports" / "locales"
    missing: dict[str, list[str]] = {}
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        path = catalog_path(locales_dir, language)
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=language, domain=DOMAIN)
        else:
            catalog = Catalog(locale=language, domain=DOMAIN, project="touchpoint")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.header_comment = _HEADER % {"language": language}
        catalog.last_translator = catalog.language_team = "the touchpoint authors"
        catalog.msgid_bugs_address = ""
        catalog.fuzzy = False  # the header: a fuzzy one is skipped, and its plural forms with it
        catalog.revision_date = _STABLE_DATE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            write_po(f, catalog, width=100, sort_output=False, include_lineno=False)
        missing[language] = list(untranslated(catalog))
        translations.cache_clear()
    return missing


def untranslated(catalog: Catalog) -> Iterator[str]:
    """The message ids a catalog has no (or only a fuzzy) translation for."""
    for message in catalog:
        if not message.id:
            continue
        strings: Iterable[str | None] = (
            message.string if isinstance(message.string, tuple | list) else (message.string,)
        )
        if message.fuzzy or not all(strings):
            yield message.id if isinstance(message.id, str) else message.id[0]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else ".").resolve()
    missing = update_catalogs(root)
    for language, ids in missing.items():
        print(f"{language}: {len(ids)} untranslated" + "".join(f"\n  {i!r}" for i in ids[:20]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
