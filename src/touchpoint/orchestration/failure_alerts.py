"""Email the alerts list of ``reports/recipients.yml`` when an Airflow task has failed for good.

:func:`task_failure_alert` is every touchpoint task's ``on_failure_callback`` (set in
:func:`touchpoint.orchestration.defaults.default_args`). Airflow 3 calls it in the task's own
process (the task runner's ``finalize``) once the task ends ``failed``, i.e. after its last
retry; a try that will be retried ends ``up_for_retry`` and runs ``on_retry_callback`` instead.
Tasks that never ran (``upstream_failed``, ``skipped``) call nothing, so one failure sends one
alert per failed task, not one per task downstream of it. When the scheduler fails a task whose
process died (heartbeat timeout), the DAG processor runs the callback, without an exception.

Each alert is recorded in ``reporting.deliveries`` (report ``task_failure``, period
``dag/run/task/try``), so a callback that runs twice for the same failure sends nothing twice.
If the warehouse cannot be reached (it may be why the task failed) the alert still goes out,
unrecorded: an alert sent twice beats an alert never sent. A task that has told the alerts
list itself (the data-quality gate) raises :class:`AlreadyAlerted` and gets no second email.

This module is imported at DAG-parse time (through ``dag_defaults``): everything heavy is
imported inside the functions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from touchpoint.errors import TouchpointError

if TYPE_CHECKING:
    from touchpoint.delivery.deliver import Delivery
    from touchpoint.delivery.message import RenderedReport
    from touchpoint.delivery.recipients import Recipient
    from touchpoint.report.render import TaskFailure

log = logging.getLogger(__name__)

REPORT = "task_failure"
MAX_ERROR_CHARS = 500
NO_EXCEPTION = (
    "no exception recorded: the task was failed outside its own process "
    "(heartbeat timeout, killed worker); see the log"
)

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_SECRET_PAIR = re.compile(
    r"(?i)\b(password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key|authorization)"
    r"(['\"]?\s*[=:]\s*['\"]?)(?:(?:bearer|basic)\s+)?[^\s,;&'\"]+"
)
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")


class AlreadyAlerted(TouchpointError):
    """Fails a task whose failure the task itself has told the alerts list about (the weekly
    report's data-quality gate sends its own alert): the failure callback sends nothing more."""


def task_failure_alert(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: one email per address of the alerts list, recorded in
    ``reporting.deliveries``. Never raises: a failing alert is logged and must not hide (or
    replace) the task's own failure."""
    label = "a task"
    try:
        failure = failure_from_context(context)
        label = (
            f"{failure.dag_id}.{failure.task_label} ({failure.run_id}, try {failure.try_number})"
        )
        if isinstance(context.get("exception"), AlreadyAlerted):
            log.info("%s failed and alerted the alerts list itself: no task-failure alert", label)
            return
        deliveries = send_failure_alert(failure)
        log.info(
            "task-failure alert for %s: %s",
            label,
            ", ".join(
                f"{d.recipient} {d.status}{' (new)' if d.newly_sent else ''}" for d in deliveries
            )
            or "no alerts recipients configured",
        )
    except Exception:
        log.exception(
            "could not send the task-failure alert for %s (the task's own failure stands; "
            "check the smtp_default connection and reports/recipients.yml)",
            label,
        )


def failure_from_context(context: Mapping[str, Any]) -> TaskFailure:
    """What the alert says, from a task callback's context (the task runner's, or the DAG
    processor's, which has no ``exception``)."""
    from touchpoint.report.render import TaskFailure

    ti = context.get("ti") or context["task_instance"]
    try_number = int(getattr(ti, "try_number", None) or 1)
    map_index = getattr(ti, "map_index", None)
    params = context.get("params") or {}
    return TaskFailure(
        dag_id=str(ti.dag_id),
        task_id=str(ti.task_id),
        run_id=str(context.get("run_id") or ti.run_id),
        interval_start=_iso(context.get("data_interval_start")),
        interval_end=_iso(context.get("data_interval_end")),
        try_number=try_number,
        tries_allowed=max(int(getattr(ti, "max_tries", 0) or 0) + 1, try_number),
        error=one_line_error(context.get("exception")),
        log_url=_log_url(ti),
        log_file=_log_file(ti, try_number),
        hostname=getattr(ti, "hostname", None) or None,
        map_index=map_index if isinstance(map_index, int) else -1,
        params_start=_param(params, "start"),
        params_end=_param(params, "end"),
    )


def period_of(failure: TaskFailure) -> str:
    """The ledger key of one failure: a second callback for the same try finds it sent."""
    return f"{failure.dag_id}/{failure.run_id}/{failure.task_label}/try{failure.try_number}"


def send_failure_alert(failure: TaskFailure) -> list[Delivery]:
    """Render and deliver the alert to every address of the alerts list."""
    from touchpoint.config import load_settings
    from touchpoint.delivery.deliver import RetryPolicy, deliver, send_unrecorded
    from touchpoint.delivery.recipients import load_recipients
    from touchpoint.orchestration import connections
    from touchpoint.report.render import render_task_failure
    from touchpoint.warehouse.connection import connect, set_role
    from touchpoint.warehouse.schema import ensure_schema

    settings = load_settings()
    recipients = load_recipients(settings.reports_dir / "recipients.yml")
    if not recipients.alerts:
        log.error(
            "task %s failed, but reports/recipients.yml lists no alerts recipients",
            failure.task_label,
        )
        return []
    templates = settings.reports_dir / "templates"
    smtp = connections.smtp_settings()

    def render(recipient: Recipient) -> RenderedReport:
        return render_task_failure(failure, recipient, templates)

    # A callback must not keep a finished task's process for long: fewer, shorter retries.
    policy = RetryPolicy(attempts=3, first_delay=1.0, max_delay=5.0)
    try:
        conn = connect(connections.warehouse_url())
    except Exception as exc:  # noqa: BLE001 - whatever keeps the ledger away, the alert goes out
        log.warning(
            "task-failure alert for %s: the ledger reporting.deliveries is out of reach (%s); "
            "sending without recording it",
            failure.task_label,
            one_line_error(exc),
        )
        return send_unrecorded(
            smtp, REPORT, period_of(failure), recipients.sender, recipients.alerts, render
        )
    with conn:
        ensure_schema(conn)
        set_role(
            conn, settings.roles.reporter
        )  # the send log is the reporter's, as for the weekly report
        return deliver(
            conn,
            smtp,
            REPORT,
            period_of(failure),
            recipients.sender,
            recipients.alerts,
            render,
            policy=policy,
        )


def one_line_error(error: object) -> str:
    """``Type: message`` on one line, at most MAX_ERROR_CHARS, with passwords in URLs,
    ``password=``/``token=``-style values, bearer tokens and every secret Airflow's masker
    knows (connection passwords fetched in this process) replaced by ``***``."""
    if error is None:
        return NO_EXCEPTION
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    text = _airflow_masked(" ".join(text.split()))
    from touchpoint.warehouse.connection import redact

    text = _URL.sub(lambda m: redact(m.group(0)), text)
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} ***", text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _airflow_masked(text: str) -> str:
    try:
        # The masker Airflow applies to task logs: it knows every connection password and
        # sensitive extra this process has fetched. Internal module: optional.
        from airflow.sdk._shared.secrets_masker import redact as airflow_redact

        masked = airflow_redact(text)
        return masked if isinstance(masked, str) else text
    except Exception:  # noqa: BLE001 - our own redaction below still applies
        return text


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if hasattr(moment, "isoformat") else (str(moment) if moment else None)


def _param(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    return str(value) if value else None


def _log_url(ti: Any) -> str | None:
    """The task try's page in the Airflow UI (``[api] base_url`` + the run and task)."""
    try:
        return str(ti.log_url)
    except Exception:  # noqa: BLE001 - the alert goes out without it
        return None


def _log_file(ti: Any, try_number: int) -> str | None:
    """Where a worker writes this try's log: ``[logging] base_log_folder`` /
    ``log_filename_template`` (rendered as Airflow's own executor does)."""
    try:
        import jinja2
        from airflow.sdk.configuration import conf

        folder = conf.get("logging", "base_log_folder")
        template = conf.get("logging", "log_filename_template")
        if "{{" in template:
            name = jinja2.Template(template).render(ti=ti, try_number=try_number)
        else:
            name = template.format(
                dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, try_number=try_number
            )
        return f"{folder.rstrip('/')}/{name}"
    except Exception:  # noqa: BLE001 - the alert goes out without it
        return None
