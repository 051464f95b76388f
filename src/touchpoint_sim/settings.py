"""The simulator's and the demo's settings (``TOUCHPOINT_DEMO_*``), beside the product's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from touchpoint.config import Settings, env_date, env_int
from touchpoint.errors import ConfigError


@dataclass(frozen=True)
class DemoSettings:
    """The simulated world ``touchpoint simulate`` and ``touchpoint demo`` make by default."""

    #: enough customers and weeks for the signals to be judged (two warm-up weeks, then at
    #: least three trailing weeks with enough answers per touchpoint)
    customers: int = 3000
    weeks: int = 8
    seed: int = 7
    #: the first simulated day, a Monday
    start: date = date(2026, 10, 5)


def demo_incidents(weeks: int) -> tuple[str, ...]:
    """What the demo plants when no ``--incident`` is given, so that its first report has
    something in every section: in the last week the delivery partner fails (CSAT after a
    delivery two points down, five times the delivery cases); until then, the reviews page
    hid the good reviews (purchases after reading it halved), fixed in the last week; in the
    two weeks before the last, a billing run went wrong (four times the billing cases), over
    since. Nothing in a world too short to judge them."""
    if weeks < DemoSettings.weeks:
        return ()
    return (
        f"delivery_packaging:week={weeks}:csat=-2:tickets=x5",
        f"reviews_read:week=1..{weeks - 1}:conversion=x0.5",
        f"BILLING_ISSUE:week={weeks - 2}..{weeks - 1}:tickets=x4",
    )


def load_demo_settings() -> DemoSettings:
    d = DemoSettings
    start = env_date("TOUCHPOINT_DEMO_START", d.start)
    if start.weekday() != 0:
        raise ConfigError(f"TOUCHPOINT_DEMO_START={start} is a {start:%A}; weeks start on Monday")
    return DemoSettings(
        customers=env_int("TOUCHPOINT_DEMO_CUSTOMERS", d.customers),
        weeks=env_int("TOUCHPOINT_DEMO_WEEKS", d.weeks),
        seed=env_int("TOUCHPOINT_DEMO_SEED", d.seed),
        start=start,
    )


def sim_dir(settings: Settings) -> Path:
    """Where the simulated CRM data set and the ground truth are written."""
    return settings.var_dir / "sim"


def crm_port(settings: Settings) -> int:
    """The simulated CRM listens where the product reads the CRM from (``TOUCHPOINT_CRM_URL``)."""
    parts = urlsplit(settings.crm_url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        raise ConfigError(
            f"TOUCHPOINT_CRM_URL={settings.crm_url!r} is not a loopback URL with a port;"
            " the simulated CRM serves on 127.0.0.1 only"
        )
    return parts.port
