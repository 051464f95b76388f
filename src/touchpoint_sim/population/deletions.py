"""Deletions: objects a CRM user deletes, which HubSpot archives (gone from search and lists,
listed by ``?archived=true`` for 90 days)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from touchpoint_sim.population.records import World, iso


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def delete_objects(world: World, deals: int = 0, contacts: int = 0, seed: int = 0) -> None:
    """Archive ``deals`` deals (closed-won ones first: a deletion that takes a conversion away)
    and ``contacts`` contacts, each at a moment between its last change and the world's end.
    Recorded in ``world.deleted``; the objects stay in ``world.crm``, marked as HubSpot marks
    them (``archived``, ``archivedAt``)."""
    rng = random.Random(f"deletions:{seed}")
    end = world.end
    for object_type, count in (("deals", deals), ("contacts", contacts)):
        live = [r for r in world.crm[object_type] if r.get("archived") is not True]
        if count > len(live):
            raise ValueError(f"cannot delete {count} {object_type}: the world has {len(live)}")
        if object_type == "deals":  # won first, each group in a seeded order
            rng.shuffle(live)
            live.sort(key=lambda r: r["properties"].get("dealstage") != "closedwon")
            chosen = live[:count]
        else:
            chosen = rng.sample(live, count)
        for record in chosen:
            changed = _parse(record["updatedAt"])
            at = changed + (end - changed) * rng.uniform(0.2, 0.8)
            record["archived"] = True
            record["archivedAt"] = iso(min(at, end - timedelta(seconds=1)))
            world.deleted.append((object_type, str(record["id"])))
