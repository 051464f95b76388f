"""``touchpoint demo``: the whole system end to end on simulated sources.

Starts the warehouse (embedded cluster unless TOUCHPOINT_WAREHOUSE_URL is set) and the local
SMTP sink, simulates a population, serves its CRM on loopback, runs the ingest DAG week by
week and the weekly report DAG for the last full week through real Airflow, then prints what
was delivered. Running it again reuses everything and duplicates nothing.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from touchpoint.config import Settings
from touchpoint.errors import TouchpointError
from touchpoint.intervals import iso_week
from touchpoint.local import background
from touchpoint.local.airflow_runs import DagRunRequest, run_dags
from touchpoint.local.airflow_services import METADATA_DB, ensure_database, shared_env
from touchpoint.local.cluster import EmbeddedCluster, port_in_use
from touchpoint.pipeline import WEEKLY_REPORT, days_not_ingested
from touchpoint.warehouse.connection import connect, redact
from touchpoint.warehouse.schema import ensure_schema
from touchpoint_sim.crm_server import CrmData, CrmServer
from touchpoint_sim.incidents import check_incidents, parse_incident
from touchpoint_sim.population import generate
from touchpoint_sim.settings import crm_port, sim_dir
from touchpoint_sim.writers import write_world


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _step(number: int, text: str) -> float:
    print(f"[{number}/6] {text}", flush=True)
    return time.monotonic()


def find_eml(mail_dir: Path, message_id: str) -> Path | None:
    slug = "".join(c if c.isalnum() or c in "._-" else "_" for c in message_id.strip("<>"))[:80]
    matches = sorted(mail_dir.glob(f"*-{slug}.eml"))
    return matches[-1] if matches else None


def run_demo(
    settings: Settings,
    customers: int,
    weeks: int,
    seed: int,
    start_day: date,
    incidents: tuple[str, ...] = (),
) -> int:
    began = time.monotonic()
    if weeks < 2:
        raise TouchpointError(
            "the demo needs at least 2 weeks (the report compares with the week before)"
        )
    planted = tuple(
        parse_incident(text) for text in incidents
    )  # a bad one stops here, before anything starts
    check_incidents(planted, weeks)

    t = _step(1, "warehouse")
    if settings.uses_embedded_warehouse:
        status = EmbeddedCluster(settings).start(log=lambda m: print(f"  {m}", flush=True))
        print(f"  embedded PostgreSQL {status.detail}: {redact(status.url)}")
    warehouse_url = settings.resolved_warehouse_url
    with connect(warehouse_url) as conn:
        ensure_schema(conn)
    print(f"  using {redact(warehouse_url)} ({time.monotonic() - t:.0f} s)")

    _step(2, "local SMTP sink")
    pid = background.start_background(
        "SMTP sink",
        ["mail", "serve", "--port", str(settings.smtp_port)],
        settings.run_dir / "mail.pid",
        settings.log_dir / "mail.log",
        settings.smtp_port,
    )
    print(f"  running (pid {pid}) on 127.0.0.1:{settings.smtp_port}, saving to {settings.mail_dir}")

    t = _step(
        3, f"simulating {customers} customers over {weeks} weeks from {start_day} (seed {seed})"
    )
    world = generate(customers, weeks, seed, start_day, incidents=planted)
    manifest = write_world(world, Path(settings.landing_url), sim_dir(settings))
    print(
        f"  {manifest['web_events']} web events, {manifest['email_events']} email events, "
        f"{manifest['contacts']} CRM contacts ({time.monotonic() - t:.0f} s)"
    )

    _step(4, "CRM simulator (HubSpot-compatible API)")
    port = crm_port(settings)
    port = port if not port_in_use(port) else _free_port()
    crm = CrmServer(
        CrmData.from_dir(sim_dir(settings) / "crm"), port=port, token=settings.crm_token
    ).start_in_thread()
    print(f"  serving on {crm.url}")

    try:
        t = _step(5, "running the DAGs through Airflow (logs: var/log/demo-airflow.log)")
        start = datetime.combine(start_day, dtime.min, UTC)
        report_monday = start + timedelta(weeks=weeks)
        # One ingest run over the whole simulated period (a manual range, as a backfill by hand
        # would be); skipped when a previous demo has ingested it already.
        requests = []
        if days_not_ingested(start, report_monday, warehouse_url):
            requests.append(
                DagRunRequest(
                    "touchpoint_ingest",
                    report_monday.isoformat(),
                    {"start": start.isoformat(), "end": report_monday.isoformat()},
                )
            )
        else:
            print(
                f"  {start:%Y-%m-%d} .. {report_monday:%Y-%m-%d} is ingested already "
                "(ops.ingest_intervals)"
            )
        # Noon UTC on the Monday after the last week: after the 07:00 schedule in any European zone,
        # so the run's interval is the week that just ended.
        requests.append(
            DagRunRequest(
                "touchpoint_weekly_report", (report_monday + timedelta(hours=12)).isoformat(), {}
            )
        )
        # the metadata database and home `touchpoint airflow` serves: its UI shows these runs
        metadata_url = ensure_database(warehouse_url, METADATA_DB)
        env = shared_env(settings, metadata_url, crm.url)
        results = run_dags(requests, env, settings.log_dir / "demo-airflow.log")
        failures = [r for r in results if r.get("state") != "success"]
        if failures or len(results) < len(requests):
            raise TouchpointError(
                "a DAG run failed ("
                f"{failures[0]['message'].strip() if failures else 'not every run finished'}); "
                f"see {settings.log_dir / 'demo-airflow.log'}"
            )
        print(f"  all {len(requests)} runs succeeded ({time.monotonic() - t:.0f} s)")
    finally:
        crm.shutdown()

    _step(6, "delivered")
    week_start = (report_monday - timedelta(weeks=1)).date()
    with connect(warehouse_url) as conn:
        rows = conn.execute(
            "select recipient, subject, message_id, sent_at from reporting.deliveries"
            " where report = %s and period = %s and status = 'sent' order by recipient",
            (WEEKLY_REPORT, iso_week(week_start)),
        ).fetchall()
        total = conn.execute(
            "select touchpoints from marts.agg_touchpoints_weekly"
            " where week_start = %s and grain = 'week' and region = '(all)'",
            (week_start,),
        ).fetchone()
    print(f"  weekly report for the week of {week_start}: {total[0] if total else 0} touchpoints")
    demo_started = datetime.now(UTC) - timedelta(seconds=time.monotonic() - began)
    for recipient, subject, message_id, sent_at in rows:
        eml = find_eml(settings.mail_dir, message_id)
        when = (
            "sent now"
            if sent_at >= demo_started
            else f"already sent {sent_at:%Y-%m-%d %H:%M} UTC, not sent again"
        )
        print(
            f"  to {recipient} ({when})\n    subject: {subject}\n"
            f"    saved:   {eml or '(not found in ' + str(settings.mail_dir) + ')'}"
        )
    print(f"demo finished in {time.monotonic() - began:.0f} s")
    return 0 if rows else 1
