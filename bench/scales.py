"""The bench scales, declared once: how big each data set is and what it must hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SEED = 8
START = date(2026, 10, 5)  # a Monday
WEEKS = 8
#: signed-up customers come back about this often a week: what makes the web volume realistic.
#: 2.2 since the steady simulator (arrivals over the whole span, so later arrivals have less time
#: in the world): at 1.75 the L data set fell to about 4.8 M web events, under its minimum.
RETURN_VISITS_PER_WEEK = 2.2
#: people per generation slice (slices are built two at a time)
SLICE = 25_000


@dataclass(frozen=True)
class Scale:
    name: str
    customers: int
    #: (web events, email events, CRM objects) the data set must hold at least
    minimum: tuple[int, int, int] = (0, 0, 0)


SCALES = {
    "S": Scale("S", 10_000),
    "M": Scale("M", 50_000),
    "L": Scale("L", 200_000, minimum=(5_000_000, 1_000_000, 200_000)),
}
