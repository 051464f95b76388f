"""Write a simulated world in each vendor's real landing format, plus the ground truth."""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from touchpoint.progress import progress
from touchpoint_sim.population import World

SENDGRID_BATCH = 200


def _day_of_unix(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).date().isoformat()


def _segment_day_folder(iso: str) -> str:
    """Segment's S3 destination names day folders by the day's start in epoch milliseconds."""
    day = datetime.fromisoformat(iso).astimezone(UTC).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return str(int(midnight.timestamp() * 1000))


def _gzip_bytes(text: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(text.encode())
    return buf.getvalue()


def write_sendgrid(world: World, root: Path, part: int | None = None) -> int:
    """Webhook batches, one file a batch, in day folders; a mix of array, NDJSON and gzip.
    ``part``: this world is one slice of a larger one, written beside the others' files
    (names carry the part; nothing is removed first)."""
    if part is None:
        shutil.rmtree(root, ignore_errors=True)
    prefix = "batch-" if part is None else f"batch-p{part:03d}-"
    files = 0
    days = _days(
        world.email_events, lambda e: _day_of_unix(e["timestamp"]), root, "writing SendGrid batches"
    )
    for _, folder, events in days:
        for n, offset in enumerate(range(0, len(events), SENDGRID_BATCH)):
            batch = events[offset : offset + SENDGRID_BATCH]
            style = (files + n) % 3
            if style == 0:
                (folder / f"{prefix}{n:04d}.json").write_text(json.dumps(batch))
            elif style == 1:
                (folder / f"{prefix}{n:04d}.ndjson").write_text(
                    "".join(json.dumps(e) + "\n" for e in batch)
                )
            else:
                (folder / f"{prefix}{n:04d}.json.gz").write_bytes(_gzip_bytes(json.dumps(batch)))
        files += -(-len(events) // SENDGRID_BATCH)
    return files


def write_segment(world: World, root: Path, part: int | None = None) -> int:
    """Gzipped NDJSON files in day folders, one for each hour with events, as Segment's S3
    destination uploads about hourly: a day's last file lands after midnight (``part``: as for
    :func:`write_sendgrid`). Returns the number of files."""
    if part is None:
        shutil.rmtree(root, ignore_errors=True)
    written = 0
    for _day, folder, events in _days(
        world.web_events,
        lambda e: _segment_day_folder(e["receivedAt"]),
        root,
        "writing Segment files",
    ):
        by_hour: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            received = datetime.fromisoformat(event["receivedAt"]).astimezone(UTC)
            hour = received.replace(minute=0, second=0, microsecond=0)
            by_hour[str(int(hour.timestamp() * 1000))].append(event)
        for hour_ms, hour_events in sorted(by_hour.items()):
            text = "".join(json.dumps(e) + "\n" for e in hour_events)
            (folder / f"{hour_ms}.part-{part or 0:04d}.json.gz").write_bytes(_gzip_bytes(text))
            written += 1
    return written


def _days(
    events: list[dict[str, Any]],
    day_of: Callable[[dict[str, Any]], str],
    root: Path,
    description: str,
) -> Iterator[tuple[str, Path, list[dict[str, Any]]]]:
    """The events by day, in day order, each with its folder under ``root`` made; a progress
    line (``description``) counts the events written."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_day[day_of(event)].append(event)
    with progress(description, total=len(events), unit="events") as step:
        for day, day_events in sorted(by_day.items()):
            folder = root / day
            folder.mkdir(parents=True, exist_ok=True)
            yield day, folder, day_events
            step.advance(len(day_events))


def _json_list(items: list[Any]) -> str:
    return "[\n" + ",\n".join(json.dumps(item) for item in items) + "\n]\n"


def write_crm(world: World, root: Path) -> dict[str, int]:
    """One JSON list per HubSpot object type, and one file per association direction
    (``associations/<from>__<to>.json``: ``{from id: [to ids]}``). Returns the count per type."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "associations").mkdir(parents=True)
    with progress(
        "writing CRM objects", total=sum(map(len, world.crm.values())), unit="objects"
    ) as step:
        for object_type, objects in world.crm.items():
            (root / f"{object_type}.json").write_text(_json_list(objects))
            step.advance(len(objects))
    for (from_type, to_type), links in world.associations.items():
        (root / "associations" / f"{from_type}__{to_type}.json").write_text(
            json.dumps(links, indent=0) + "\n"
        )
    return {object_type: len(objects) for object_type, objects in world.crm.items()}


def write_conversations(world: World, root: Path) -> dict[str, int]:
    """The conversations inbox beside the CRM objects: ``threads.json`` (a JSON list of threads
    as the API serves them at the end) and ``messages.json`` (``{thread id: [messages]}``, each
    thread's in the order written). Returns the counts."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "threads.json").write_text(_json_list(world.conversation_threads))
    (root / "messages.json").write_text(
        "{\n"
        + ",\n".join(
            f"{json.dumps(thread_id)}: {json.dumps(messages)}"
            for thread_id, messages in sorted(world.conversation_messages.items())
        )
        + "\n}\n"
    )
    return {
        "threads": len(world.conversation_threads),
        "messages": sum(map(len, world.conversation_messages.values())),
    }


def write_truth(world: World, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "people.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "person",
                "email",
                "second_email",
                "contact_id",
                "anonymous_id",
                "user_id",
                "signed_up_at",
                "purchased_at",
                "merged_contact_ids",
                "company_id",
                "consent_analytics",
                "consent_marketing",
                "email_optout_at",
                "problem_category",
                "tickets",
                "survey_type",
                "satisfaction",
                "churned_at",
            ]
        )
        for p in world.people:
            writer.writerow(
                [
                    p.index,
                    p.email,
                    p.second_email or "",
                    p.contact.id if p.contact else "",
                    p.anonymous_id,
                    p.user_id if p.signed_up_at else "",
                    _when(p.signed_up_at),
                    _when(p.purchased_at),
                    ";".join(p.merged_contact_ids),
                    p.company.record.id if p.company and p.contact else "",
                    "" if p.consent is None else str(p.consent["analytics"]).lower(),
                    "" if p.consent is None else str(p.consent["marketing"]).lower(),
                    _when(p.email_optout_at),
                    p.problem or "",
                    p.tickets,
                    p.survey_type or "",
                    "" if p.satisfaction is None else p.satisfaction,
                    _when(p.churned_at),
                ]
            )
    with (root / "events.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "natural_id", "person"])
        writer.writerows(world.truth)
    if world.deleted:
        with (root / "deleted.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["object_type", "object_id"])
            writer.writerows(world.deleted)
    if world.incidents:
        with (root / "incidents.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["incident", "effect", "object_type", "natural_id", "person"])
            writer.writerows(world.incident_truth)


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def write_world(world: World, landing: Path, sim_dir: Path) -> dict[str, Any]:
    """Write everything; returns a manifest (also saved as ``sim_dir/manifest.json``)."""
    manifest = {
        "start": world.start.isoformat(),
        "weeks": world.weeks,
        "seed": world.seed,
        "customers": len(world.people),
        "sendgrid_files": write_sendgrid(world, landing / "sendgrid"),
        "segment_files": write_segment(world, landing / "segment"),
        "web_events": len(world.web_events),
        "email_events": len(world.email_events),
        "contacts": len(world.contacts),
    }
    if world.return_visits_per_week:
        manifest["return_visits_per_week"] = world.return_visits_per_week
    if world.incidents:
        changed: dict[str, Counter] = {i.text: Counter() for i in world.incidents}
        for text, effect, object_type, _, _ in world.incident_truth:
            changed[text][f"{effect}:{object_type}"] += 1
        manifest["incidents"] = [
            {**i.as_dict(world.start), "changed": dict(sorted(changed[i.text].items()))}
            for i in world.incidents
        ]
    manifest["crm"] = write_crm(world, sim_dir / "crm")
    manifest["conversations"] = write_conversations(world, sim_dir / "crm" / "conversations")
    if world.deleted:
        manifest["deleted"] = dict(Counter(object_type for object_type, _ in world.deleted))
    manifest["associations"] = {
        f"{a}__{b}": len(links) for (a, b), links in world.associations.items()
    }
    write_truth(world, sim_dir / "truth")
    (sim_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
