"""Planted incidents as people live: who met a target, and the purchases and cases they stop."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from touchpoint_sim.incidents import CONVERSION_LOOKBACK_DAYS, Incident
from touchpoint_sim.population.base import Base
from touchpoint_sim.population.records import Person, iso


class Exposure(Base):
    """The decisions a planted incident changes while a person's journey is being lived."""

    def has_met(self, p: Person, incident: Incident, lo: datetime, hi: datetime) -> bool:
        """Whether the person met the incident's target in [lo, hi)."""
        return any(lo <= at < hi and incident.met(tp, ch, cat) for at, tp, ch, cat in p.touches)

    def incident_rng(self, p: Person) -> random.Random:
        """The person's draws for incidents: their own stream of what happens is not moved."""
        rng = self._incident_rngs.get(p.index)
        if rng is None:
            rng = self._incident_rngs[p.index] = random.Random(f"{self.seed}:incident:{p.index}")
        return rng

    def active_incidents(self, effect: str, at: datetime) -> list[tuple[int, Incident]]:
        return [
            (n, i)
            for n, i in enumerate(self.incidents)
            if effect in i.effects and i.holds(at, self.world.start)
        ]

    def log_change(
        self, incident: Incident, effect: str, object_type: str, object_id: str, person: int
    ) -> None:
        self.world.incident_truth.append((incident.text, effect, object_type, object_id, person))

    def purchase_blocked(self, p: Person, at: datetime, object_type: str, object_id: str) -> bool:
        """``conversion=xF``: a purchase decided at ``at`` by someone who met the target in the
        CONVERSION_LOOKBACK_DAYS before happens only with probability F."""
        for _, incident in self.active_incidents("conversion", at):
            if (
                self.has_met(p, incident, at - timedelta(days=CONVERSION_LOOKBACK_DAYS), at)
                and self.incident_rng(p).random() >= incident.effects["conversion"]
            ):
                self.log_change(incident, "conversion", object_type, object_id, p.index)
                p.purchase_stopped = True
                return True
        return False

    def case_spared(self, p: Person, at: datetime, category: str) -> bool:
        """``tickets=xF`` with F < 1: a case of the target's categories opened from week N is
        opened only with probability F."""
        for _, incident in self.active_incidents("tickets", at):
            factor = incident.effects["tickets"]
            if (
                factor < 1
                and category in incident.categories()
                and self.incident_rng(p).random() >= factor
            ):
                self.log_change(
                    incident, "tickets", "spared_case", f"{category}@{iso(at)}", p.index
                )
                return True
        return False
