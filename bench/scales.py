"""The bench scales, declared once: how big each data set is and what it must hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SEED = 8
#: a Monday; the data set ends (17 weeks on) before today, as the simulated CRM serves no future
START = date(2026, 7, 27)
#: the history every stage starts from: loaded, then built in full
HISTORY_WEEKS = 8
#: the daily run is measured on this many consecutive weekdays after the history (Monday on)
MEASURED_WEEKDAYS = 5
#: the history-growth figure: the same weekday (Monday) after this many weeks of history
LONG_HISTORY_WEEKS = 16
#: what a data set spans: the long history and the week after it
WEEKS = LONG_HISTORY_WEEKS + 1
#: signed-up customers come back about this often a week: what makes the web volume realistic.
#: 2.2 since the steady simulator (arrivals over the whole span, so later arrivals have less time
#: in the world): at 1.75 the L data set fell to about 4.8 M web events, under its minimum.
RETURN_VISITS_PER_WEEK = 2.2
#: people per generation slice (slices are built two at a time)
SLICE = 25_000


@dataclass(frozen=True)
class Scale:
    name: str
    #: people who arrive during the history; as many arrive in every later week
    customers: int
    #: (web events, email events, CRM objects) the data set must hold at least
    minimum: tuple[int, int, int] = (0, 0, 0)

    @property
    def people(self) -> int:
        """Everyone the data set's whole span holds (arrivals are steady over it)."""
        return self.customers * WEEKS // HISTORY_WEEKS


SCALES = {
    "S": Scale("S", 10_000),
    "M": Scale("M", 50_000),
    "L": Scale("L", 200_000, minimum=(5_000_000, 1_000_000, 200_000)),
}
