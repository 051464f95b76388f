"""Worlds with planted incidents, built into a warehouse: what the end-to-end incident tests
(tests/test_planted_incidents.py) and the calibration (``make calibrate``) share.

A world is simulated with its ``--incident`` specs, written to landing files and a CRM served
on loopback, extracted by the product's own extractors and built by the product's dbt project;
the signals are then read from ``marts.agg_touchpoint_signals`` as the report reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from touchpoint import pipeline
from touchpoint.config import Settings
from touchpoint.extract.run import CrmEndpoint
from touchpoint.report.signals import key_name, signal_keys
from touchpoint.transform.dbt import run_dbt
from touchpoint.warehouse.connection import connect
from touchpoint.warehouse.schema import ensure_schema
from touchpoint_sim.crm_server import NO_LIMITS, CrmData, CrmServer
from touchpoint_sim.incidents import parse_incident
from touchpoint_sim.population import generate
from touchpoint_sim.writers import write_world

#: The models the signals need (with their parents): the calibration builds only these, the
#: end-to-end tests build everything as the pipeline does.
SIGNAL_MODELS = ("+agg_touchpoint_signals", "+fct_customer_health_weekly")
#: The report sections a signal can be named in, by the mart's ``section``.
SECTIONS = ("needs_attention", "recurring_problems", "at_risk")


@dataclass(frozen=True)
class PlantedWorld:
    """A built warehouse and the world it holds."""

    url: str
    start: date
    weeks: int
    seed: int
    incidents: tuple[str, ...]

    def week_start(self, week: int) -> date:
        """The Monday of ``week`` (1-based, as in ``--incident``)."""
        return self.start + timedelta(weeks=week - 1)


@dataclass(frozen=True)
class Flag:
    """One signal the report would show as needing attention."""

    signal_key: str
    section: str
    grain: str
    channel: str | None
    touchpoint: str | None
    category: str | None
    category_touchpoint: (
        str | None
    )  # a case category's touchpoint (DELIVERY_ISSUE: delivery_packaging)
    metric: str
    z_score: float | None
    #: the touchpoints named with it: the same answers or customers, which the data cannot tell
    #: apart
    named_with: tuple[str, ...] = ()

    def names(self, target: str) -> bool:
        """Whether this flag is about ``target`` (a touchpoint, a channel, a case category or
        its touchpoint, or a touchpoint named with it). A touchpoint's row carries its channel,
        so a channel's incident is named by the touchpoint row that explains it."""
        return target in (
            self.touchpoint,
            self.channel,
            self.category,
            self.category_touchpoint,
            *self.named_with,
        )


def build_planted_world(
    url: str,
    settings: Settings,
    root: Path,
    *,
    customers: int,
    weeks: int,
    seed: int,
    start: date,
    incidents: Sequence[str] = (),
    select: Sequence[str] | None = None,
    log=lambda message: None,
) -> PlantedWorld:
    """Simulate, extract and build into the (empty) database ``url``. ``select``: dbt
    selectors to build without their tests; None builds and tests everything."""
    world = generate(
        customers=customers,
        weeks=weeks,
        seed=seed,
        start=start,
        incidents=tuple(parse_incident(text) for text in incidents),
    )
    write_world(world, root / "landing", root / "sim")
    log(
        f"simulated {customers} customers x {weeks} weeks, seed {seed}, "
        f"incidents {list(incidents) or 'none'}"
    )
    local = replace(settings, landing_url=str(root / "landing"))
    begin = datetime.combine(start, datetime.min.time(), UTC)
    end = begin + timedelta(weeks=weeks)
    crm = CrmServer(CrmData.from_dir(root / "sim" / "crm"), port=0, **NO_LIMITS).start_in_thread()
    try:
        for source in ("crm", "email", "web"):
            pipeline.extract(
                source,
                begin,
                end,
                url,
                local,
                crm=CrmEndpoint(crm.url, "sim-token", max_requests_per_second=0),
            )
    finally:
        crm.shutdown()
    log("extracted")
    if select is None:
        pipeline.transform(url, local)
    else:
        with connect(url) as conn:
            ensure_schema(conn)
        # seeds and snapshots too (a plain `dbt run` skips them), tests left to the pipeline's build
        run_dbt(
            [
                "build",
                "--select",
                *select,
                "--exclude-resource-type",
                "test",
                "--exclude-resource-type",
                "unit_test",
            ],
            local.dbt_project_dir,
            url,
            local.var_dir,
        )
    log("built")
    return PlantedWorld(url, start, weeks, seed, tuple(incidents))


def flags(url: str, week_start: date, region: str = "(all)") -> list[Flag]:
    """What the report for ``week_start`` would name in its three signal sections (the rows it
    shows: flagged, not explained by a stronger touchpoint row)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select signal_key, section, grain, channel, touchpoint, category, category_touchpoint,"
            " metric, z_score, named_with from marts.agg_touchpoint_signals"
            " where week_start = %s and region = %s and status = 'needs_attention'"
            " and explained_by is null"
            " order by section, rank",
            (week_start, region),
        ).fetchall()
    return [
        Flag(
            *row[:-2],
            float(row[-2]) if row[-2] is not None else None,
            tuple(key_name(key) for key in signal_keys(row[-1])),
        )
        for row in rows
    ]


def judged_weeks(url: str, region: str = "(all)") -> list[date]:
    """The weeks for which the mart judged at least one signal (after the warm-up): the report
    weeks the calibration counts."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select distinct week_start from marts.agg_touchpoint_signals"
            " where region = %s and is_judged order by 1",
            (region,),
        ).fetchall()
    return [r[0] for r in rows]
