"""The builder's state, and its seeded draws of ids and of moments on the world's clock."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, date, datetime, timedelta

from touchpoint_sim.incidents import Incident
from touchpoint_sim.population.catalog import HOUR_WEIGHTS, WEEK_NOISE, WEEKDAY_WEIGHTS
from touchpoint_sim.population.records import (
    CRM_TYPES,
    ID_BASE,
    ID_BLOCK_DEFAULT,
    Company,
    CrmRecord,
    Person,
    World,
)


class Base:
    """What every part of the builder shares: the world being built, the current random
    stream (``rng``: the person's own while they live), the clock and the CRM records."""

    def __init__(
        self,
        customers: int,
        weeks: int,
        seed: int,
        start: date,
        return_visits_per_week: float = 0.0,
        first_index: int = 0,
        incidents: tuple[Incident, ...] = (),
    ) -> None:
        # The people themselves (names, arrival, acquisition...) come from one stream; a slice
        # of a larger population (first_index > 0) has its own. What a person then lives draws
        # from that person's own stream (see build()).
        self.seed = seed
        self.main = self.rng = random.Random(seed if first_index == 0 else f"{seed}:{first_index}")
        self.first_index = first_index
        self.return_visits_per_week = return_visits_per_week
        self.world = World(
            start=start,
            weeks=weeks,
            seed=seed,
            return_visits_per_week=return_visits_per_week,
            incidents=tuple(incidents),
        )
        self.customers = customers
        self.t0 = datetime.combine(start, datetime.min.time(), UTC)
        self.end = self.world.end
        self.records: dict[str, list[CrmRecord]] = {t: [] for t in CRM_TYPES}
        self.companies: list[Company] = []
        # Companies are made with the people (main stream): slices keep rooms of their own.
        self._company_ids = ID_BASE["companies"] + first_index * ID_BLOCK_DEFAULT
        self._used: dict[tuple[str, int], int] = {}
        self._names: set[str] = set()
        # Arrivals: a noisy rate per week (the same for every slice of a world), a weekly and a
        # daily shape; one cumulative weight per (week, day) and per hour.
        weeks_rng = random.Random(f"{seed}:weeks")
        week_rate = [math.exp(weeks_rng.gauss(0, WEEK_NOISE)) for _ in range(weeks)]
        self._day_cum = list(_accumulate(rate * w for rate in week_rate for w in WEEKDAY_WEIGHTS))
        self._hour_cum = list(_accumulate(HOUR_WEIGHTS))
        self.incidents = tuple(incidents)
        self.tracking = bool(self.incidents)
        self._incident_rngs: dict[int, random.Random] = {}

    # -- primitives ----------------------------------------------------------------------
    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hexid(self, n: int = 22) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def moment(self, lo: datetime, hi: datetime) -> datetime:
        """A random moment in [lo, hi), never past the world's end."""
        hi = min(hi, self.end - timedelta(minutes=1))
        if hi <= lo:
            return lo
        at = lo + timedelta(seconds=self.rng.uniform(0, (hi - lo).total_seconds()))
        return at.replace(microsecond=(at.microsecond // 1000) * 1000)

    def later(self, at: datetime, lo: timedelta, hi: timedelta) -> datetime:
        """A moment between lo and hi after ``at`` (may fall after the end: then it has not
        happened)."""
        moved = at + lo + timedelta(seconds=self.rng.uniform(0, (hi - lo).total_seconds()))
        return moved.replace(microsecond=(moved.microsecond // 1000) * 1000)

    def office(self, at: datetime) -> datetime:
        """The next working moment (Mon-Fri, 08:00-18:00 UTC) at or after ``at``: when staff act."""
        while at.weekday() >= 5 or at.hour >= 18 or at.hour < 8:
            if at.weekday() >= 5 or at.hour >= 18:
                at = (at + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
            else:
                at = at.replace(hour=8, minute=0, second=0, microsecond=0)
            at += timedelta(minutes=self.rng.randint(0, 90))
        return at

    def live(self, at: datetime) -> bool:
        return at < self.end

    def touch(
        self, p: Person, at: datetime, touchpoint: str, channel: str, category: str | None = None
    ) -> None:
        p.touches.append((at, touchpoint, channel, category))


def _accumulate(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out
