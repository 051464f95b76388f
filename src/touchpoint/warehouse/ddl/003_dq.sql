-- Data-quality results: one row per suite run, one row per expectation outcome.
create schema if not exists dq;

create table if not exists dq.validation_runs (
    run_id              text not null,
    suite               text not null,
    interval_start      timestamptz not null,
    interval_end        timestamptz not null,
    validated_at        timestamptz not null default now(),
    success             boolean not null,
    critical_failures   integer not null,
    warnings            integer not null,
    data_docs           text,
    primary key (run_id, suite)
);

create table if not exists dq.expectation_results (
    run_id              text not null,
    suite               text not null,
    rule_id             text not null,
    expectation         text not null,
    column_name         text,
    severity            text not null,
    success             boolean not null,
    observed_value      text,
    unexpected_count    bigint,
    error               text,
    interval_start      timestamptz not null,
    interval_end        timestamptz not null,
    primary key (run_id, suite, rule_id)
);
