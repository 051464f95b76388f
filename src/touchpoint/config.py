"""Settings: the one place where the environment becomes typed configuration.

Every knob the product reads from the environment is declared here, with its default.
Nothing else in the package reads ``os.environ`` for settings; the simulator and the demo keep
theirs in ``touchpoint_sim.settings``.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

from touchpoint.errors import ConfigError

#: The repository root (``src/touchpoint/config.py`` -> three levels up).
DEFAULT_PROJECT_DIR = Path(__file__).resolve().parents[2]


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not an integer; set it to a number or unset it"
        ) from None


def env_float(name: str, default: float) -> float:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a number; set it to a number or unset it"
        ) from None


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true or false)")


def env_date(name: str, default: date) -> date:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an ISO date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class IngestLimits:
    """What the loader accepts of a record or a file; what exceeds goes to quarantine with the
    reason (README, "Operating it")."""

    #: events before this day are impossible for this product (loader and quality gate alike)
    earliest_event: date = date(2015, 1, 1)
    #: how far an event may be stamped ahead of its receipt (device clocks): beyond, quarantined
    future_tolerance_hours: float = 24.0
    #: one record (an NDJSON line, an array element, a CRM object) at most this many bytes
    #: (Segment itself refuses messages over 32 KB)
    max_record_bytes: int = 1_000_000
    #: one landing file at most this many bytes once decompressed; the rest is quarantined
    max_file_bytes: int = 2_000_000_000
    #: natural keys longer than this are stored hashed (the original stays in the payload)
    max_key_chars: int = 200
    #: identifiers (ids, anonymous ids, emails) longer than this are quarantined: none is real
    max_identifier_chars: int = 256
    #: a run also loads the files of this many days before its interval that it has not loaded
    #: yet (late files: Segment uploads about hourly, so a day's last batch lands after midnight)
    lookback_days: int = 7

    @cached_property  # read for every record loaded
    def future_tolerance(self) -> timedelta:
        return timedelta(hours=self.future_tolerance_hours)

    @cached_property
    def earliest_event_time(self) -> datetime:
        return datetime.combine(self.earliest_event, time.min, UTC)


#: the limits when nothing is configured (for callers without settings: tests, the bench)
DEFAULT_LIMITS = IngestLimits()


@dataclass(frozen=True)
class Roles:
    """The warehouse's group roles (NOLOGIN), one per stage; ``touchpoint.warehouse.schema``
    creates them and their grants, and each stage takes its own (README, "Roles")."""

    #: extract: writes raw.*
    loader: str = "loader"
    #: dbt and the data-quality checks: reads raw, owns the dbt schemas, writes dq.* and ops.*
    transformer: str = "transformer"
    #: people querying the marts: no raw, no direct identifiers
    analyst: str = "analyst"
    #: the weekly report and alerts: reads the marts, writes the send log reporting.deliveries
    reporter: str = "reporter"

    def all(self) -> tuple[str, str, str, str]:
        return (self.loader, self.transformer, self.analyst, self.reporter)


def env_role(name: str, default: str) -> str:
    value = env_str(name, default) or default
    # dbt-postgres sends its profile's role unquoted (set role <name>): keep names plain identifiers
    if (
        not value.replace("_", "").isalnum()
        or not value.isascii()
        or value != value.lower()
        or value[0].isdigit()
    ):
        raise ConfigError(
            f"{name}={value!r} is not a plain lower-case role name (letters, digits, _)"
        )
    return value


@dataclass(frozen=True)
class Settings:
    """Typed settings, read once from the environment by :func:`load_settings`."""

    project_dir: Path
    var_dir: Path
    #: An external warehouse; when set, no embedded cluster is ever started. Secrets (this URL's
    #: password, the CRM token, the SMTP password) stay out of the repr, so a logged Settings
    #: shows none of them.
    warehouse_url: str | None = field(default=None, repr=False)
    #: the embedded cluster (``touchpoint.local.cluster``): port, database, login user
    pg_port: int = 54329
    pg_database: str = "touchpoint"
    pg_user: str = "touchpoint"
    #: Explicit PostgreSQL bin directory (initdb, pg_ctl); None means auto-detect.
    pg_bin: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    #: where SendGrid and Segment files land (a local dir or an fsspec URL); default var/landing
    landing_url: str = ""
    #: the HubSpot API the CLI extracts from (the DAGs take theirs from the connection)
    crm_url: str = "http://127.0.0.1:8765"
    crm_token: str = field(default="sim-token", repr=False)
    #: Airflow task retries (0 in the demo and tests, so a failure shows at once)
    task_retries: int = 2
    #: Time zone of the weekly report's schedule (Mondays 07:00 there)
    report_timezone: str = "Europe/Paris"
    #: Send nothing for a week without a single touchpoint (an outage, not a quiet week)
    report_skip_empty_weeks: bool = True
    #: How long after a week ends the report waits for its ingest before failing
    report_ingest_wait_hours: int = 12
    #: SMTP: attempts per recipient within one task try, and the first backoff delay (doubling)
    smtp_attempts: int = 4
    smtp_first_delay_seconds: float = 1.0
    #: CRM requests per second at most, for every extract task of the deployment together
    #: (HubSpot allows 100 per 10 s per app on its lowest tier, 190 above); 0: no limit
    crm_max_requests_per_second: float = 9.0
    #: of them, CRM searches per second at most (HubSpot's search endpoints allow about 5 per
    #: account); 0: no limit of their own
    crm_max_searches_per_second: float = 4.0
    #: a 429 asking to wait longer than this (Retry-After) ends the run with a clear error
    crm_max_retry_after_seconds: float = 120.0
    #: each CRM search starts this long before its window (HubSpot's search index lags writes)
    crm_search_overlap_minutes: float = 15.0
    #: dbt's threads; 0: one per CPU core (more only queue for the same cores)
    dbt_threads: int = 0
    #: dbt's log file (var/dbt/logs): "debug" adds every SQL statement, at about a quarter of a
    #: small build's time; one of debug, info, warn, error, none
    dbt_file_log_level: str = "info"
    #: the warehouse roles each stage runs as
    roles: Roles = Roles()
    #: what a record or a landing file may be (``TOUCHPOINT_<FIELD>``)
    limits: IngestLimits = IngestLimits()
    #: SMTP AUTH for the CLI's sends and the local sink (`mail serve` then requires it); the
    #: DAGs take theirs from the smtp_default connection. None: no authentication.
    smtp_login: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    #: Where a signal of the weekly report links to (a BI tool's trend page): a URL template with
    #: {grain} {key} {metric} {week} (and {region}). None: the chart inside the report (#trend-...).
    report_trend_url: str | None = None

    @property
    def dbt_thread_count(self) -> int:
        return self.dbt_threads or os.cpu_count() or 1

    @property
    def pg_data_dir(self) -> Path:
        return self.var_dir / "pg" / "data"

    @property
    def pg_log_file(self) -> Path:
        return self.var_dir / "pg" / "postgres.log"

    @property
    def mail_dir(self) -> Path:
        return self.var_dir / "mail"

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def airflow_home(self) -> Path:
        return self.var_dir / "airflow"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_dir / "dbt_project"

    @property
    def dags_dir(self) -> Path:
        return self.project_dir / "dags"

    @property
    def expectations_dir(self) -> Path:
        return self.project_dir / "expectations"

    @property
    def reports_dir(self) -> Path:
        return self.project_dir / "reports"

    @property
    def uses_embedded_warehouse(self) -> bool:
        return self.warehouse_url is None

    @property
    def pg_password_file(self) -> Path:
        """The embedded cluster's login password, generated at its creation (mode 0600)."""
        return self.var_dir / "pg" / "password"

    def embedded_url_for(self, database: str) -> str:
        """A URL to a database of the embedded cluster, with its password once it has one (read
        from ``pg_password_file`` on every call: the cluster may have been created since)."""
        try:
            secret = ":" + quote(self.pg_password_file.read_text().strip(), safe="")
        except FileNotFoundError:
            secret = ""
        return f"postgresql://{self.pg_user}{secret}@127.0.0.1:{self.pg_port}/{database}"

    @property
    def embedded_url(self) -> str:
        return self.embedded_url_for(self.pg_database)

    @property
    def resolved_warehouse_url(self) -> str:
        return self.warehouse_url or self.embedded_url


def load_settings() -> Settings:
    """Read the environment into :class:`Settings`: each field from ``TOUCHPOINT_<FIELD>`` in
    capitals (the roles from ``TOUCHPOINT_ROLE_<ROLE>``), its default the field's own."""
    d = Settings
    smtp_login, smtp_password = _smtp_credentials()
    project_dir = Path(env_str("TOUCHPOINT_PROJECT_DIR") or DEFAULT_PROJECT_DIR).resolve()
    var_dir = Path(env_str("TOUCHPOINT_VAR_DIR") or project_dir / "var").resolve()
    return Settings(
        project_dir=project_dir,
        var_dir=var_dir,
        warehouse_url=env_str("TOUCHPOINT_WAREHOUSE_URL"),
        pg_port=env_int("TOUCHPOINT_PG_PORT", d.pg_port),
        pg_database=env_str("TOUCHPOINT_PG_DATABASE") or d.pg_database,
        pg_user=env_str("TOUCHPOINT_PG_USER") or d.pg_user,
        pg_bin=env_str("TOUCHPOINT_PG_BIN"),
        smtp_port=env_int("TOUCHPOINT_SMTP_PORT", d.smtp_port),
        landing_url=env_str("TOUCHPOINT_LANDING_URL") or str(var_dir / "landing"),
        crm_url=env_str("TOUCHPOINT_CRM_URL") or d.crm_url,
        crm_token=env_str("TOUCHPOINT_CRM_TOKEN") or d.crm_token,
        task_retries=env_int("TOUCHPOINT_TASK_RETRIES", d.task_retries),
        report_timezone=env_str("TOUCHPOINT_REPORT_TIMEZONE") or d.report_timezone,
        report_skip_empty_weeks=env_bool(
            "TOUCHPOINT_REPORT_SKIP_EMPTY_WEEKS", d.report_skip_empty_weeks
        ),
        report_ingest_wait_hours=env_int(
            "TOUCHPOINT_REPORT_INGEST_WAIT_HOURS", d.report_ingest_wait_hours
        ),
        smtp_attempts=env_int("TOUCHPOINT_SMTP_ATTEMPTS", d.smtp_attempts),
        smtp_first_delay_seconds=env_float(
            "TOUCHPOINT_SMTP_FIRST_DELAY_SECONDS", d.smtp_first_delay_seconds
        ),
        crm_max_requests_per_second=env_float(
            "TOUCHPOINT_CRM_MAX_REQUESTS_PER_SECOND", d.crm_max_requests_per_second
        ),
        crm_max_searches_per_second=env_float(
            "TOUCHPOINT_CRM_MAX_SEARCHES_PER_SECOND", d.crm_max_searches_per_second
        ),
        crm_max_retry_after_seconds=env_float(
            "TOUCHPOINT_CRM_MAX_RETRY_AFTER_SECONDS", d.crm_max_retry_after_seconds
        ),
        crm_search_overlap_minutes=env_float(
            "TOUCHPOINT_CRM_SEARCH_OVERLAP_MINUTES", d.crm_search_overlap_minutes
        ),
        dbt_threads=_dbt_threads(),
        dbt_file_log_level=_dbt_file_log_level(),
        roles=load_roles(),
        limits=load_limits(),
        smtp_login=smtp_login,
        smtp_password=smtp_password,
        report_trend_url=_trend_url_template(env_str("TOUCHPOINT_REPORT_TREND_URL")),
    )


DBT_LOG_LEVELS = ("debug", "info", "warn", "error", "none")


def _dbt_threads() -> int:
    threads = env_int("TOUCHPOINT_DBT_THREADS", Settings.dbt_threads)
    if threads < 0:
        raise ConfigError(f"TOUCHPOINT_DBT_THREADS={threads} must be 0 (one per core) or more")
    return threads


def _dbt_file_log_level() -> str:
    level = (env_str("TOUCHPOINT_DBT_FILE_LOG_LEVEL") or Settings.dbt_file_log_level).lower()
    if level not in DBT_LOG_LEVELS:
        raise ConfigError(
            f"TOUCHPOINT_DBT_FILE_LOG_LEVEL={level!r} is none of {', '.join(DBT_LOG_LEVELS)}"
        )
    return level


#: the fields a trend URL template may use (report.render fills them, URL-quoted)
TREND_URL_FIELDS = ("grain", "key", "metric", "week", "region")


def _trend_url_template(value: str | None) -> str | None:
    """Refuse a template that is no http(s) URL or names a field the report does not fill, now
    rather than when the Monday report is rendered."""
    if value is None:
        return None
    name = "TOUCHPOINT_REPORT_TREND_URL"
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name}={value!r} is not an http(s) URL")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as error:
        raise ConfigError(
            f"{name}={value!r} is not a valid template ({error}); "
            f"write a literal brace as {{{{ or }}}}"
        ) from None
    unknown = sorted(fields - set(TREND_URL_FIELDS))
    if unknown:
        raise ConfigError(
            f"{name}={value!r} uses unknown field(s) {', '.join('{' + f + '}' for f in unknown)};"
            f" known: {', '.join('{' + f + '}' for f in TREND_URL_FIELDS)}"
        )
    return value


def _smtp_credentials() -> tuple[str | None, str | None]:
    login, password = env_str("TOUCHPOINT_SMTP_LOGIN"), env_str("TOUCHPOINT_SMTP_PASSWORD")
    if bool(login) != bool(password):
        missing = "TOUCHPOINT_SMTP_PASSWORD" if login else "TOUCHPOINT_SMTP_LOGIN"
        raise ConfigError(
            f"SMTP authentication needs both TOUCHPOINT_SMTP_LOGIN and TOUCHPOINT_SMTP_PASSWORD;"
            f" {missing} is not set"
        )
    return login or None, password or None


def load_limits() -> IngestLimits:
    d = IngestLimits
    limits = IngestLimits(
        earliest_event=env_date("TOUCHPOINT_EARLIEST_EVENT", d.earliest_event),
        future_tolerance_hours=env_float(
            "TOUCHPOINT_FUTURE_TOLERANCE_HOURS", d.future_tolerance_hours
        ),
        max_record_bytes=env_int("TOUCHPOINT_MAX_RECORD_BYTES", d.max_record_bytes),
        max_file_bytes=env_int("TOUCHPOINT_MAX_FILE_BYTES", d.max_file_bytes),
        max_key_chars=env_int("TOUCHPOINT_MAX_KEY_CHARS", d.max_key_chars),
        max_identifier_chars=env_int("TOUCHPOINT_MAX_IDENTIFIER_CHARS", d.max_identifier_chars),
        lookback_days=env_int("TOUCHPOINT_LOOKBACK_DAYS", d.lookback_days),
    )
    if limits.lookback_days < 0:
        raise ConfigError("TOUCHPOINT_LOOKBACK_DAYS must not be negative")
    for name in ("max_record_bytes", "max_file_bytes", "max_key_chars", "max_identifier_chars"):
        if getattr(limits, name) < 64:
            raise ConfigError(f"TOUCHPOINT_{name.upper()}={getattr(limits, name)} is below 64")
    if limits.future_tolerance_hours < 0:
        raise ConfigError("TOUCHPOINT_FUTURE_TOLERANCE_HOURS must not be negative")
    return limits


#: the shortest pseudonym secret taken (hex digits of 128 bits)
MIN_PSEUDONYM_SECRET = 32


def load_pseudonym_secret() -> str | None:
    """``TOUCHPOINT_PSEUDONYM_SECRET``, the secret a new warehouse keys its customers with
    (README, "Pseudonymous keys"); None: the warehouse generates its own."""
    secret = os.environ.get("TOUCHPOINT_PSEUDONYM_SECRET", "").strip()
    if not secret:
        return None
    if len(secret) < MIN_PSEUDONYM_SECRET:
        raise ConfigError(
            f"TOUCHPOINT_PSEUDONYM_SECRET has {len(secret)} characters; give at least"
            f" {MIN_PSEUDONYM_SECRET} (e.g. `openssl rand -hex 32`), or unset it to let the"
            " warehouse generate one"
        )
    return secret


def load_roles() -> Roles:
    """The role names alone (``ensure_schema`` and connections need them without the rest)."""
    d = Roles
    return Roles(
        loader=env_role("TOUCHPOINT_ROLE_LOADER", d.loader),
        transformer=env_role("TOUCHPOINT_ROLE_TRANSFORMER", d.transformer),
        analyst=env_role("TOUCHPOINT_ROLE_ANALYST", d.analyst),
        reporter=env_role("TOUCHPOINT_ROLE_REPORTER", d.reporter),
    )
