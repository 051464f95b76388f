"""The load benchmark's peers: dlt (what a dlt user gets) and pandas ``to_sql`` (the naive way).

Each peer runs in a child process, so its wall time and peak RSS are its own: dlt under the
python of a separate virtualenv (``ensure_dlt_python``), pandas under the project's python. The
child reports the load's own duration (first file opened to commit done); the parent counts the
rows in the target table and refuses a result whose count differs from the events in the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import _landing

HERE = Path(__file__).resolve().parent
REQUIREMENTS_DLT = HERE / "requirements-dlt.txt"
DLT_MODES = ("append", "append-csv", "merge")
#: pandas' target schema when ``table`` is not ``schema.table``
PANDAS_SCHEMA = "peers"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_POLL_SECONDS = 0.01


class PeerFailed(RuntimeError):
    """A peer's child process failed, or its table does not hold the rows the files have."""


# -- the dlt virtualenv ----------------------------------------------------------------------
def ensure_dlt_python(var_dir: Path) -> Path:
    """The python of ``var_dir/dlt-venv`` (the bench passes its var dir, var/bench), created and
    filled from requirements-dlt.txt the first time, and again whenever that file changes (its
    hash is kept in the venv)."""
    venv = Path(var_dir).absolute() / "dlt-venv"
    python = venv / "bin" / "python"
    marker = venv / ".requirements-sha256"
    digest = hashlib.sha256(REQUIREMENTS_DLT.read_bytes()).hexdigest()
    if python.exists() and marker.exists() and marker.read_text().strip() == digest:
        return python
    why = "requirements-dlt.txt changed" if venv.exists() else "first use"
    print(f"installing dlt for the benchmark peer ({why}) into {venv} ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    # The project's python makes it: the pins were resolved for that Python version.
    _checked([sys.executable, "-m", "venv", str(venv)], "creating the dlt virtualenv")
    _checked(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS_DLT),
        ],
        f"pip install -r {REQUIREMENTS_DLT}",
    )
    dlt_version = _checked(
        [str(python), "-c", "import dlt; print(dlt.__version__)"], "importing dlt"
    ).strip()
    marker.write_text(digest + "\n")
    print(f"dlt {dlt_version} ready in {venv}", flush=True)
    return python


def _checked(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-15:])
        raise PeerFailed(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


# -- the peers -------------------------------------------------------------------------------
def run_dlt(
    python: Path, source: str, files: list[str], dsn: str, dataset: str, mode: str = "append"
) -> dict[str, Any]:
    """Load ``files`` of ``source`` ("web" or "email") into dataset ``dataset`` (a schema,
    dropped first with its ``_staging`` twin) with dlt under ``python``.

    ``mode``: "append", "append-csv" (dlt's csv file format, loaded with COPY) or "merge"
    (primary key messageId / sg_event_id or a content hash; see dlt_load.py). In merge mode the
    expected row count is that of distinct keys, since merge deduplicates."""
    _check_source(source)
    if mode not in DLT_MODES:
        raise ValueError(f"unknown dlt mode {mode!r}: one of {', '.join(DLT_MODES)}")
    _check_identifier(dataset, "dataset")
    python = Path(python).absolute()  # not resolve(): a venv's python is a symlink out of it
    conninfo = _libpq_url(dsn)
    # the dataset and the staging dataset dlt keeps beside it for merges
    _drop_schemas(conninfo, dataset, f"{dataset}_staging")

    work_root = python.parents[2] / "dlt-runs"  # var/bench/dlt-runs beside var/bench/dlt-venv
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root) as work:
        work_dir = Path(work)
        # a fresh pipelines dir each run: no local state or schema carried over from the last one
        request = {
            "source": source,
            "files": [str(f) for f in files],
            "dsn": conninfo,
            "dataset": dataset,
            "mode": mode,
            "pipelines_dir": str(work_dir / "pipelines"),
        }
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        }
        env.update(
            {
                "RUNTIME__DLTHUB_TELEMETRY": "false",  # no network here, and none of dlt's business
                "RUNTIME__LOG_LEVEL": "WARNING",
                # nothing read from or written to ~/.dlt or a .dlt folder of the caller's cwd
                "DLT_DATA_DIR": str(work_dir / "dlt-data"),
                "DLT_PROJECT_DIR": str(work_dir / "dlt-project"),
            }
        )
        child = _run_child(
            python, HERE / "dlt_load.py", request, work_dir, env, f"dlt {source} {mode}"
        )
    result = child["result"]
    rows = _count(conninfo, result["schema"], result["table"])
    expected = _expected_rows(source, files, dedup=mode == "merge")
    if rows != expected:
        what = "distinct events" if mode == "merge" else "events"
        raise PeerFailed(
            f"dlt ({mode}) left {rows} rows in {result['schema']}.{result['table']} "
            f"but the {len(files)} {source} files hold {expected} {what} "
            f"(the child yielded {result['events_yielded']})"
        )
    formats = ",".join(result["file_formats"]) or "?"
    disposition = "merge" if mode == "merge" else "append"
    config = (
        f"dlt {result['dlt_version']}, write_disposition={disposition}, "
        f"loader_file_format={formats}, {len(result['tables'])} tables "
        f"(root {result['table']}: {result['root_columns']} columns)"
    )
    return {
        "peer": "dlt",
        "source": source,
        "mode": mode,
        "rows": rows,
        "seconds": result["seconds"],
        "wall_seconds": child["wall_seconds"],
        "cpu_seconds": child["cpu_seconds"],
        "peak_rss_mb": child["peak_rss_mb"],
        "config": config,
        "steps": result["steps"],
    }


def run_pandas(source: str, files: list[str], dsn: str, table: str) -> dict[str, Any]:
    """Load ``files`` of ``source`` with ``DataFrame.to_sql`` into ``table`` ("schema.table", or
    a bare name in schema ``peers``), dropped first. Columns natural_key, event_time, payload."""
    _check_source(source)
    schema, _, name = table.rpartition(".")
    schema = schema or PANDAS_SCHEMA
    _check_identifier(schema, "schema")
    _check_identifier(name, "table")
    conninfo = _libpq_url(dsn)
    _drop_table(conninfo, schema, name)
    with tempfile.TemporaryDirectory(prefix="pandas-peer-") as work:
        request = {
            "source": source,
            "files": [str(f) for f in files],
            "dsn": conninfo,
            "schema": schema,
            "table": name,
        }
        child = _run_child(
            Path(sys.executable),
            HERE / "pandas_load.py",
            request,
            Path(work),
            dict(os.environ),
            f"pandas {source}",
        )
    result = child["result"]
    rows = _count(conninfo, schema, name)
    expected = _expected_rows(source, files, dedup=False)
    if rows != expected:
        raise PeerFailed(
            f"pandas to_sql left {rows} rows in {schema}.{name} but the "
            f"{len(files)} {source} files hold {expected} events"
        )
    not_objects = _count(conninfo, schema, name, where="jsonb_typeof(payload) <> 'object'")
    if not_objects:
        raise PeerFailed(
            f"pandas to_sql stored {not_objects} payloads of {schema}.{name} as "
            "something other than a JSON object (a str given to the JSONB type is "
            "stored as a jsonb string)"
        )
    versions = result["versions"]
    config = (
        f"pandas {versions['pandas']} to_sql(method=None, chunksize=5000), "
        f"SQLAlchemy {versions['sqlalchemy']} postgresql+psycopg {versions['psycopg']}, "
        "payload jsonb"
    )
    steps = {"read": round(result["read_seconds"], 3), "to_sql": round(result["to_sql_seconds"], 3)}
    return {
        "peer": "pandas",
        "source": source,
        "rows": rows,
        "seconds": result["seconds"],
        "wall_seconds": child["wall_seconds"],
        "cpu_seconds": child["cpu_seconds"],
        "peak_rss_mb": child["peak_rss_mb"],
        "config": config,
        "steps": steps,
    }


# -- the child process -----------------------------------------------------------------------
def _run_child(
    python: Path,
    script: Path,
    request: dict[str, Any],
    work_dir: Path,
    env: dict[str, str],
    label: str,
) -> dict[str, Any]:
    """Run ``python script REQUEST RESULT`` in ``work_dir``; its result, wall time and peak RSS.

    Peak RSS is the child's VmHWM, read from /proc while it runs (every 10 ms; VmHWM is a
    high-water mark, so only growth in the last poll interval before exit can be missed). The
    ``ru_maxrss`` that ``wait4`` returns is not used: Linux carries the parent's high-water mark
    across the exec (a /bin/true started by a 600 MB parent reports 613 MB), so a child of the
    benchmark's harness would report at least the harness's size. Its CPU time (user + system,
    the child's own and that of any process it waited for; not the Postgres server's) is exact,
    and less disturbed than wall time when other work shares the machine."""
    request_path = work_dir / "request.json"
    result_path = work_dir / "result.json"
    log_path = work_dir / "child.log"
    request_path.write_text(json.dumps(request))
    with log_path.open("w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(python), str(script), str(request_path), str(result_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work_dir,
        )
        peak_kb = 0
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
            time.sleep(_POLL_SECONDS)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    if proc.returncode != 0 or not result_path.exists():
        lines = log_path.read_text(errors="replace").strip().splitlines()
        tail = "\n".join(lines[-20:]) or "no output"
        raise PeerFailed(f"{label}: {script.name} exited {proc.returncode}:\n{tail}")
    return {
        "result": json.loads(result_path.read_text()),
        "wall_seconds": wall,
        "peak_rss_mb": peak_kb / 1024,
        "cpu_seconds": rusage.ru_utime + rusage.ru_stime,
    }


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


# -- the target ------------------------------------------------------------------------------
def _libpq_url(dsn: str) -> str:
    """A URL libpq, psycopg and dlt all take (SQLAlchemy's ``+driver`` removed)."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", dsn)


def _drop_schemas(conninfo: str, *schemas: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def _drop_table(conninfo: str, schema: str, table: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, table)))


def _count(conninfo: str, schema: str, table: str, where: str = "true") -> int:
    """``count(*)`` of ``schema.table`` where ``where`` (a condition of ours, never user input)."""
    import psycopg
    from psycopg import sql

    query = sql.SQL("select count(*) from {} where {}").format(
        sql.Identifier(schema, table), sql.SQL(where)
    )
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _expected_rows(source: str, files: list[str], dedup: bool) -> int:
    if not dedup:
        return _landing.count_events([str(f) for f in files])
    key_name = _landing.NATURAL_KEY[source]
    keys = {
        event.get(key_name) or _landing.content_key(event)
        for f in files
        for event in _landing.iter_events(str(f))
    }
    return len(keys)


def _check_source(source: str) -> None:
    if source not in _landing.NATURAL_KEY:
        raise ValueError(f"unknown source {source!r}: one of {', '.join(_landing.NATURAL_KEY)}")


def _check_identifier(name: str, what: str) -> None:
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"{what} {name!r} is not a plain lower-case SQL identifier "
            "([a-z_][a-z0-9_]*, at most 63 characters)"
        )
