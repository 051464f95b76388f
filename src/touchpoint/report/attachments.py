"""The report's KPI table as a CSV attachment: machine-readable (dot decimals, ISO dates)."""

from __future__ import annotations

import csv
import io

from touchpoint.delivery.message import Attachment
from touchpoint.report.content import WeeklyContent

COLUMNS = (
    "week",
    "week_start",
    "region",
    "business_unit",
    "kpi",
    "this_week",
    "previous_week",
    "change",
    "change_percent",
    "sample",
)


def _plain(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def kpi_csv(content: WeeklyContent) -> Attachment:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
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
