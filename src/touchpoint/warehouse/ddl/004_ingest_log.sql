-- Which intervals the ingest has completed (extract, dbt, data-quality checks all passed): the
-- weekly report waits until every day of its week is covered. One row per completed run;
-- a re-run of the same interval adds a row, so the history of runs is kept.
create schema if not exists ops;

create table if not exists ops.ingest_intervals (
    interval_start timestamptz not null,
    interval_end   timestamptz not null,
    run_id         text not null,
    finished_at    timestamptz not null default now(),
    primary key (interval_start, interval_end, run_id),
    check (interval_end > interval_start)
);
