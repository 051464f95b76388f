"""``touchpoint simulate``: generate a world, or serve its CRM as a HubSpot-compatible API."""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import date
from pathlib import Path

from touchpoint_sim.crm_server import CrmData, CrmServer
from touchpoint_sim.incidents import Incident, check_incidents, parse_incident
from touchpoint_sim.population import generate
from touchpoint_sim.writers import write_world


def generate_world(customers: int, weeks: int, seed: int, start: date, landing: Path, out: Path,
                   return_visits_per_week: float = 0.0, incidents: tuple[Incident, ...] = ()) -> dict:
    world = generate(customers, weeks, seed, start, return_visits_per_week, incidents=incidents)
    return write_world(world, landing, out)


def run(args: argparse.Namespace) -> int:
    if args.sim_command == "serve-crm":
        crm_dir = args.out / "crm"
        if not crm_dir.exists():
            print(f"touchpoint: error: no simulated CRM data in {crm_dir}; run `touchpoint simulate` first")
            return 2
        page_size = getattr(args, "page_size", None)  # `--page-size N`: smaller pages than HubSpot's
        server = CrmServer(CrmData.from_dir(crm_dir), port=args.port, token=args.token,
                           fault_rate=args.fault_rate, verbose=args.verbose, page_size=page_size)
        pages = f", pages of at most {page_size}" if page_size else ""
        print(f"CRM simulator on {server.url} (fault rate {args.fault_rate}{pages}); Ctrl-C to stop", flush=True)
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
    manifest = generate_world(args.customers, args.weeks, args.seed, args.start, args.landing, args.out,
                              args.return_visits_per_week, incidents)
    print(f"simulated {manifest['customers']} customers over {manifest['weeks']} weeks from {manifest['start']}: "
          f"{manifest['web_events']} web events, {manifest['email_events']} email events, "
          f"{manifest['contacts']} CRM contacts -> {args.landing}, {args.out}")
    print("CRM objects: " + ", ".join(f"{n} {t}" for t, n in manifest["crm"].items()))
    for incident in manifest.get("incidents", []):
        changed = ", ".join(f"{n} {what}" for what, n in incident["changed"].items()) or "nothing"
        print(f"incident {incident['incident']} from {incident['from']}: changed {changed}")
    return 0
