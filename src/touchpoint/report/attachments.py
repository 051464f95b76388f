"""The report's KPI table as a CSV attachment: machine-readable values (dot decimals, ISO dates,
the KPIs' keys), its header in the reader's language."""

from __future__ import annotations

import csv
import io

from touchpoint.delivery.message import Attachment
from touchpoint.i18n import N_
from touchpoint.report.content import WeeklyContent
from touchpoint.report.wording import Wording

COLUMNS = (
    N_("week"),
    N_("week_start"),
    N_("region"),
    N_("business_unit"),
    N_("kpi"),
    N_("this_week"),
    N_("previous_week"),
    N_("change"),
    N_("change_percent"),
    N_("sample"),
)


def _plain(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def kpi_csv(content: WeeklyContent, words: Wording) -> Attachment:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(words._(column) for column in COLUMNS)
    for kpi in content.kpis:
        writer.writerow(
            (
                content.iso_week,
                content.week_start.isoformat(),
                content.slice.region,
                content.slice.business_unit,
                kpi.key,
                _plain(kpi.current),
                _plain(kpi.previous),
                _plain(kpi.delta),
                _plain(kpi.percent, 2),
                "" if kpi.sample is None else kpi.sample,
            )
        )
    name = f"touchpoint-kpis-{content.iso_week}.csv"
    return Attachment(filename=name, data=buffer.getvalue().encode("utf-8"), mime_type="text/csv")
