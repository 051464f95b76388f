"""Run a versioned expectation suite (``expectations/*.json``) on one interval of one table.

This is the one module that talks to Great Expectations Core: suite file and interval in,
:class:`ValidationSummary` out, :class:`GXValidationFailed` when a critical expectation fails.
It is shaped so that moving to the provider's ``GXValidateCheckpointOperator`` stays local.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from touchpoint.errors import TouchpointError
from touchpoint.warehouse.connection import libpq_url

log = logging.getLogger(__name__)

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class ExpectationOutcome:
    rule_id: str
    expectation: str
    column: str | None
    severity: str
    success: bool
    observed: Any
    unexpected_count: int | None
    error: str | None


@dataclass
class ValidationSummary:
    suite: str
    table: str
    start: datetime
    end: datetime
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity != "critical"]

    @property
    def passed(self) -> bool:
        return not self.critical_failures

    def describe(self) -> str:
        lines = [f"{self.suite} on {self.table} for {self.start.isoformat()} .. {self.end.isoformat()}:"]
        for o in sorted(self.outcomes, key=lambda o: o.rule_id):
            state = "ok  " if o.success else ("FAIL" if o.severity == "critical" else "warn")
            observed = o.observed if o.unexpected_count is None else f"{o.unexpected_count} unexpected"
            lines.append(f"  {state} {o.rule_id} {o.expectation}({o.column or ''}) observed={observed}"
                         + (f" error={o.error}" if o.error else ""))
        return "\n".join(lines)


class GXValidationFailed(TouchpointError):
    """A critical expectation failed; the message names each one with its observed value."""

    def __init__(self, summary: ValidationSummary) -> None:
        self.summary = summary
        failed = "; ".join(
            f"{o.rule_id} {o.expectation}({o.column or ''}) observed "
            f"{o.observed if o.unexpected_count is None else str(o.unexpected_count) + ' unexpected'}"
            for o in summary.critical_failures
        )
        super().__init__(f"data quality gate closed for {summary.table} "
                         f"{summary.start.date()}..{summary.end.date()}: {failed}")


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    table: str
    time_column: str
    expectations: list[dict[str, Any]]


def load_suite_spec(path: Path) -> SuiteSpec:
    try:
        spec = json.loads(path.read_text())
        return SuiteSpec(spec["suite"], spec["table"], spec["time_column"], spec["expectations"])
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise TouchpointError(f"expectation suite {path} is unreadable or incomplete: {exc}") from None


def _error(info: dict[str, Any]) -> str | None:
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return "; ".join(str(i.get("exception_message")) for i in infos if i.get("raised_exception")) or None


def validate_interval(warehouse_url: str, suite_path: Path, start: datetime, end: datetime) -> ValidationSummary:
    """Validate the rows of the suite's table whose time column falls in ``[start, end)``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("interval bounds must be timezone-aware")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    spec = load_suite_spec(suite_path)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_postgres(
        "warehouse", connection_string=libpq_url(warehouse_url).replace("postgresql://", "postgresql+psycopg://", 1)
    )
    # A query asset, because a row_condition binds timestamps as text (GX 1.24) and fails.
    query = (f"SELECT * FROM {spec.table} WHERE {spec.time_column} >= '{start.isoformat()}'::timestamptz"
             f" AND {spec.time_column} < '{end.isoformat()}'::timestamptz")
    batch = source.add_query_asset("interval", query=query).add_batch_definition_whole_table("interval")
    suite = gx.ExpectationSuite(name=spec.name)
    for number, item in enumerate(spec.expectations):
        meta = dict(item.get("meta") or {})
        meta.setdefault("rule_id", f"{spec.name}.{number:02d}")
        severity = meta.get("severity", "critical")
        if severity not in SEVERITIES:
            raise TouchpointError(f"{suite_path}: expectation {meta['rule_id']} has severity {severity!r}; "
                                  f"use one of {', '.join(SEVERITIES)}")
        config = ExpectationConfiguration(type=item["type"], kwargs=item.get("kwargs", {}), meta=meta, severity=severity)
        suite.add_expectation(config.to_domain_obj())
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=spec.name, data=batch, suite=suite))
    result = definition.run(result_format="SUMMARY")
    summary = ValidationSummary(spec.name, spec.table, start, end)
    for r in result.results:
        config = r.expectation_config
        summary.outcomes.append(ExpectationOutcome(
            rule_id=str(config.meta.get("rule_id")),
            expectation=config.type,
            column=config.kwargs.get("column"),
            severity=config.severity.value,
            success=bool(r.success),
            observed=r.result.get("observed_value"),
            unexpected_count=r.result.get("unexpected_count"),
            error=_error(r.exception_info or {}),
        ))
    log.info("%s", summary.describe())
    return summary


def run_checkpoint(warehouse_url: str, suite_path: Path, start: datetime, end: datetime) -> ValidationSummary:
    """Validate and raise :class:`GXValidationFailed` if any critical expectation failed."""
    summary = validate_interval(warehouse_url, suite_path, start, end)
    if not summary.passed:
        raise GXValidationFailed(summary)
    return summary
