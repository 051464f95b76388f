"""``touchpoint simulate``: generate a world, or serve its CRM as a HubSpot-compatible API."""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import date
from pathlib import Path

from touchpoint.config import Settings
from touchpoint_sim.crm_server import CrmData, CrmServer
from touchpoint_sim.incidents import Incident, check_incidents, parse_incident
from touchpoint_sim.population import delete_objects, generate
from touchpoint_sim.settings import crm_port, load_demo_settings, sim_dir
from touchpoint_sim.writers import write_world

INCIDENT_METAVAR = "TARGET:week=N[..M]:EFFECT[:EFFECT...]"


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """The world's size and seed, shared by ``simulate`` and ``demo`` (defaults:
    TOUCHPOINT_DEMO_*)."""
    demo = load_demo_settings()
    parser.add_argument("--customers", type=int, default=demo.customers)
    parser.add_argument("--weeks", type=int, default=demo.weeks)
    parser.add_argument("--seed", type=int, default=demo.seed)
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=demo.start,
        help="first day (a Monday), ISO date",
    )
    parser.add_argument(
        "--incident",
        action="append",
        default=[],
        metavar=INCIDENT_METAVAR,
        help="plant an incident from week N, or from N to M (repeatable): TARGET a touchpoint,"
        " channel or ticket category; EFFECT csat=-D, nps=-D, conversion=xF, tickets=xF or"
        " engagement=xF, e.g. delivery_packaging:week=3:csat=-2:tickets=x3 or"
        " checkout_page:week=2..4:conversion=x0.5",
    )


def add_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """``touchpoint simulate``'s arguments."""
    add_world_arguments(parser)
    parser.add_argument(
        "--landing",
        type=Path,
        default=Path(settings.landing_url),
        help="where to write the SendGrid and Segment files (local dir)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=sim_dir(settings),
        help="where to write the CRM data set and the ground truth",
    )
    parser.add_argument(
        "--return-visits-per-week",
        type=float,
        default=0.0,
        help="how often a signed-up customer comes back to the site, on average (default 0:"
        " only the visits of their journey)",
    )
    for kind in ("deals", "contacts"):
        parser.add_argument(
            f"--delete-{kind}",
            type=int,
            default=0,
            metavar="N",
            help=f"delete N {kind} in the CRM before the world's end (HubSpot archives them)",
        )
    sub = parser.add_subparsers(dest="sim_command")
    serve = sub.add_parser("serve-crm", help="serve the generated CRM as a HubSpot-compatible API")
    serve.add_argument(
        "--port",
        type=int,
        default=crm_port(settings),
        help="default: the port of TOUCHPOINT_CRM_URL",
    )
    serve.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="share of requests answered 429, 500 or slowly (0..1)",
    )
    serve.add_argument(
        "--page-size",
        type=int,
        default=None,
        help="cap every page at N results (HubSpot: 100 for lists, 200 for search)",
    )
    serve.add_argument("--token", default=settings.crm_token)
    serve.add_argument("--verbose", action="store_true")


def generate_world(
    customers: int,
    weeks: int,
    seed: int,
    start: date,
    landing: Path,
    out: Path,
    return_visits_per_week: float = 0.0,
    incidents: tuple[Incident, ...] = (),
    deleted: tuple[int, int] = (0, 0),
) -> dict:
    """``deleted``: how many deals and contacts are deleted in the CRM."""
    world = generate(customers, weeks, seed, start, return_visits_per_week, incidents=incidents)
    delete_objects(world, *deleted, seed=seed)
    return write_world(world, landing, out)


def run(args: argparse.Namespace) -> int:
    if args.sim_command == "serve-crm":
        crm_dir = args.out / "crm"
        if not crm_dir.exists():
            print(
                f"touchpoint: error: no simulated CRM data in {crm_dir}; "
                "run `touchpoint simulate` first"
            )
            return 2
        page_size = getattr(
            args, "page_size", None
        )  # `--page-size N`: smaller pages than HubSpot's
        server = CrmServer(
            CrmData.from_dir(crm_dir),
            port=args.port,
            token=args.token,
            fault_rate=args.fault_rate,
            verbose=args.verbose,
            page_size=page_size,
        )
        pages = f", pages of at most {page_size}" if page_size else ""
        print(
            f"CRM simulator on {server.url} (fault rate {args.fault_rate}{pages}); Ctrl-C to stop",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0
    if args.start.weekday() != 0:
        print(f"touchpoint: error: --start {args.start} is not a Monday")
        return 2
    # A bad incident is a ValueError naming the bad part: the CLI prints it and exits 2.
    incidents = tuple(parse_incident(text) for text in getattr(args, "incident", None) or ())
    check_incidents(incidents, args.weeks)
    manifest = generate_world(
        args.customers,
        args.weeks,
        args.seed,
        args.start,
        args.landing,
        args.out,
        args.return_visits_per_week,
        incidents,
        (args.delete_deals, args.delete_contacts),
    )
    print(
        f"simulated {manifest['customers']} customers over {manifest['weeks']} weeks "
        f"from {manifest['start']}: "
        f"{manifest['web_events']} web events, {manifest['email_events']} email events, "
        f"{manifest['contacts']} CRM contacts -> {args.landing}, {args.out}"
    )
    print("CRM objects: " + ", ".join(f"{n} {t}" for t, n in manifest["crm"].items()))
    if manifest.get("deleted"):
        print(
            "deleted in the CRM: " + ", ".join(f"{n} {t}" for t, n in manifest["deleted"].items())
        )
    for incident in manifest.get("incidents", []):
        changed = ", ".join(f"{n} {what}" for what, n in incident["changed"].items()) or "nothing"
        print(f"incident {incident['incident']} from {incident['from']}: changed {changed}")
    return 0
