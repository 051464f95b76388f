"""How the report words its values for one reader: numbers, dates and moments in their locale,
names, labels and phrases in their language (touchpoint.i18n's catalogs).

The content (touchpoint.report.content) is the same for every reader of a slice; everything a
reader sees of it in words passes through here or through the templates' gettext."""

from __future__ import annotations

import gettext
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Protocol
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal, format_percent

from touchpoint.delivery.recipients import ALL, Slice
from touchpoint.i18n import N_, term_id
from touchpoint.report.content import Kpi
from touchpoint.report.signals import Signal, key_name
from touchpoint.report.standing import Episode, Standing

#: the metrics a signal or a score is about, as the report names them
METRIC_LABELS = {
    "csat": N_("CSAT"),
    "nps": N_("NPS"),
    "conversion_rate": N_("conversion rate"),
    "cases": N_("cases"),
    "engagement": N_("inbound touchpoints per customer"),
}
#: why a customer is at risk (fct_customer_health_weekly.at_risk_reason)
RISK_REASONS = {
    "engagement_collapse": N_("engagement collapse"),
    "dissatisfied": N_("dissatisfied"),
}
#: what a signal's sample counts, by metric
_SAMPLE_NOUNS = {
    "csat": N_("answers"),
    "nps": N_("answers"),
    "conversion_rate": N_("customers reached"),
    "engagement": N_("customers"),
}
#: how a signal's line names the touchpoints it shares its answers or customers with
_SHARED_UNITS = {
    "csat": N_("the same answers follow %(names)s"),
    "nps": N_("the same answers follow %(names)s"),
    "conversion_rate": N_("the same customers met %(names)s"),
    "engagement": N_("the same customers met %(names)s"),
}
_SHARED_OTHERS = N_("the same units belong to %(names)s")


class Named(Protocol):
    """What a signal, an episode or a scorecard row is about."""

    @property
    def grain(self) -> str: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def touchpoint(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...


@dataclass(frozen=True)
class Wording:
    """One reader's words: ``locale`` formats (fr_FR), ``language`` speaks (it), ``timezone``
    places the moments."""

    translations: gettext.NullTranslations
    locale: str
    timezone: str = "UTC"

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    def plural(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    # numbers and dates

    def number(self, n: float) -> str:
        return format_decimal(n, locale=self.locale)

    def decimal(self, n: float, digits: int = 1) -> str:
        return format_decimal(n, format="#,##0." + "0" * digits, locale=self.locale)

    def percent(self, fraction: float | None, pattern: str = "#,##0.0%") -> str:
        if fraction is None:
            return self._("n/a")
        return format_percent(fraction, format=pattern, locale=self.locale)

    def signed_percent(self, fraction: float | None, pattern: str = "#,##0.0%") -> str:
        """A relative change ('+12.5%'); 'new' without a base."""
        if fraction is None:
            return self._("new")
        return ("+" if fraction > 0 else "") + format_percent(
            fraction, format=pattern, locale=self.locale
        )

    def signed(self, n: float, pattern: str | None = None) -> str:
        return ("+" if n > 0 else "") + format_decimal(n, format=pattern, locale=self.locale)

    def points(self, change: float, metric: str) -> str:
        """A score's change in points ('-0.4 pt', '+12 pt')."""
        value = self.signed(change, "0.0" if metric == "csat" else "0")
        return self._("%(points)s pt") % {"points": value}

    def hours(self, median: float | None, p90: float | None = None) -> str:
        """A service time: '3.2 h', or median and 90th percentile '3.2 / 9.8 h'; 'n/a'."""
        if median is None:
            return self._("n/a")
        shown = self.decimal(median)
        if p90 is not None:
            shown = f"{shown} / {self.decimal(p90)}"
        return self._("%(hours)s h") % {"hours": shown}

    def money(self, amount: float | None, currency: str) -> str:
        """An amount in whole units of its currency, as the locale writes money ('€12,345',
        '12 345 €'); 'n/a' for none."""
        if amount is None:
            return self._("n/a")
        return format_currency(
            round(amount),
            currency,
            format=self._money_pattern,
            currency_digits=False,
            locale=self.locale,
        )

    @cached_property
    def _money_pattern(self) -> str:
        pattern = Locale.parse(self.locale).currency_formats["standard"].pattern
        return re.sub(r"\.0+", "", pattern.split(";")[0])

    def days(self, value: float | None) -> str:
        """A duration in days ('12.5 d'); 'n/a' for none."""
        if value is None:
            return self._("n/a")
        return self._("%(days)s d") % {"days": self.decimal(value)}

    def day(self, d: date) -> str:
        return format_date(d, format="medium", locale=self.locale)

    def short_day(self, d: date) -> str:
        return format_date(d, format="d MMM", locale=self.locale)

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def moment(self, m: datetime | None) -> str:
        if m is None:
            return self._("no data")
        shown = format_datetime(
            m.astimezone(self._zone), format="medium", tzinfo=self._zone, locale=self.locale
        )
        return f"{shown} ({self.timezone})"

    def names(self, items: list[str]) -> str:
        """'a, b and c' in the reader's language."""
        return format_list(items, locale=self.locale)

    # names and labels

    def term(self, key: str | None) -> str:
        """A touchpoint, channel, stage, case category or model by its name in the reader's
        language ('delivery_packaging' -> 'imballaggio e consegna'); an unknown one as it is."""
        return self._(term_id(key or ""))

    def category(self, key: str | None) -> str:
        """A case category by its name in the reader's language ('DELIVERY_ISSUE' -> 'delivery
        issue'); one the catalogs do not know, lower case as it comes."""
        return self._((key or "").replace("_", " ").lower())

    def metric_label(self, metric: str) -> str:
        return self._(METRIC_LABELS.get(metric, metric))

    def risk_reason(self, reason: str) -> str:
        return self._(RISK_REASONS.get(reason, reason.replace("_", " ")))

    def slice_label(self, slice_: Slice) -> str:
        parts = []
        if slice_.region != ALL:
            parts.append(self._("region %(region)s") % {"region": slice_.region})
        if slice_.business_unit != ALL:
            parts.append(self._("%(unit)s channels") % {"unit": self.term(slice_.business_unit)})
        return ", ".join(parts) or self._("whole company")

    def signal_name(self, signal: Named) -> str:
        """'delivery packaging (email)', 'paid ads', 'delivery issue (delivery packaging)'."""
        if signal.grain == "company":
            return self._("the whole customer base")
        if signal.grain == "category":
            name = self.category(signal.category)
            return f"{name} ({self.term(signal.touchpoint)})" if signal.touchpoint else name
        if signal.grain == "touchpoint":
            return f"{self.term(signal.touchpoint)} ({self.term(signal.channel)})"
        return self.term(signal.channel)

    # values of the report

    def metric_value(self, value: float | None, kind: str) -> str:
        if value is None:
            return self._("n/a")
        if kind in ("rate", "conversion_rate"):
            return self.percent(value)
        if kind == "csat":
            return format_decimal(value, format="0.0", locale=self.locale) + " / 5"
        if kind == "nps":
            return self.signed(value, "0")
        return format_decimal(round(value, 1), format="#,##0.#", locale=self.locale)

    def kpi_value(self, kpi: Kpi) -> str:
        return self.metric_value(kpi.current, kpi.kind)

    def kpi_change(self, kpi: Kpi) -> str:
        """Counts and rates: relative change; scores: the change in points."""
        if kpi.delta is None:
            return self._("n/a")
        if kpi.kind in ("csat", "nps"):
            return self.points(kpi.delta, kpi.kind)
        return self.signed_percent(None if kpi.percent is None else kpi.percent / 100)

    def signal_number(self, value: float, metric: str) -> str:
        """A signal's number without its unit (ranges: '4.0–4.3')."""
        if metric == "conversion_rate":
            return self.percent(value)
        if metric == "csat":
            return format_decimal(value, format="0.0", locale=self.locale)
        if metric == "nps":
            return self.signed(value, "0")
        if metric == "cases":
            return format_decimal(value, format="#,##0", locale=self.locale)
        return format_decimal(value, format="#,##0.0", locale=self.locale)

    def signal_facts(self, signal: Signal) -> dict[str, str | None]:
        """The worded pieces of a signal's line: what it is now, its baseline (median and range
        of the trailing weeks), the samples behind both, and the change in the metric's natural
        unit (points for scores, relative for rates and engagement, a factor for case counts)."""
        metric = signal.metric
        label = self.metric_label(metric)

        def with_unit(value: float) -> str:
            return self.signal_number(value, metric) + (" / 5" if metric == "csat" else "")

        if metric in ("cases", "engagement"):
            now = f"{self.signal_number(signal.value, metric)} {label}"
        else:
            now = f"{label} {with_unit(signal.value)}"
        if metric in ("csat", "nps"):
            change = self.points(signal.change, metric)
        elif signal.ratio is None:
            change = self._("new")
        elif metric == "cases":
            change = "×" + format_decimal(signal.ratio, format="0.0", locale=self.locale)
        else:
            change = self.signed_percent(signal.ratio - 1, "#,##0%")
        noun = _SAMPLE_NOUNS.get(metric)
        sample = (
            None
            if noun is None
            else self._("%(count)s %(noun)s (%(before)s in the weeks before)")
            % {
                "count": self.number(signal.sample),
                "noun": self._(noun),
                "before": self.number(signal.baseline_sample),
            }
        )
        weeks = signal.baseline_weeks
        shared_with = [self.term(key_name(key)) for key in signal.named_with]
        return {
            "now": now,
            "baseline": with_unit(signal.baseline_value),
            "low": self.signal_number(signal.baseline_low, metric),
            "high": self.signal_number(signal.baseline_high, metric),
            "weeks": self.plural("the week before", "the %(num)d weeks before", weeks)
            % {"num": weeks},
            "sample": sample,
            "change": change,
            "shared": (
                self._(_SHARED_UNITS.get(metric, _SHARED_OTHERS))
                % {"names": self.names(shared_with)}
                if signal.named_with
                else None
            ),
        }

    def standing(self, standing: Standing | None) -> str:
        """A scorecard cell: the level ('4.1 / 5'), or why there is none ('too few answers (6)')."""
        if standing is None:
            return "–"
        if not standing.has_enough_sample or standing.level is None:
            noun = (
                N_("too few customers reached (%(num)s)")
                if standing.metric == "conversion_rate"
                else N_("too few answers (%(num)s)")
            )
            return self._(noun) % {"num": self.number(standing.sample)}
        return self.metric_value(standing.level, standing.metric)

    def standing_sample(self, standing: Standing) -> str:
        noun = _SAMPLE_NOUNS[standing.metric]
        return f"{self.number(standing.sample)} {self._(noun)}"

    def below_company(self, standing: Standing) -> str:
        """'CSAT 3.1 / 5 against the company's 4.2 / 5 (84 answers)'."""
        return self._("%(metric)s %(level)s against the company's %(company)s (%(sample)s)") % {
            "metric": self.metric_label(standing.metric),
            "level": self.metric_value(standing.level, standing.metric),
            "company": self.metric_value(standing.company_level, standing.metric),
            "sample": self.standing_sample(standing),
        }

    def episode_facts(self, episode: Episode) -> dict[str, str]:
        """An episode's line: where the signal is now and the normal it left."""
        now = (
            self._("nothing measured this week")
            if episode.value is None
            else self.metric_value(episode.value, _kind(episode.metric))
        )
        return {
            "now": f"{self.metric_label(episode.metric)} {now}",
            "normal": self.metric_value(episode.normal_value, _kind(episode.metric)),
            "since": self.short_day(episode.started_week),
        }


def _kind(metric: str) -> str:
    """The value kind of a signal's metric (case counts and engagement are plain numbers)."""
    return metric if metric in ("csat", "nps", "conversion_rate") else "count"
