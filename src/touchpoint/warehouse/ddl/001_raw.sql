-- Raw layer: append-only, one table per stream. The payload is kept whole as jsonb;
-- the natural key and event time are extracted for idempotent loading and filtering.
create schema if not exists raw;

create table if not exists raw._batches (
    batch_id     text primary key,
    stream       text not null,
    source       text not null,
    started_at   timestamptz not null default now(),
    finished_at  timestamptz,
    loaded       integer not null default 0,
    duplicates   integer not null default 0,
    quarantined  integer not null default 0
);

create table if not exists raw._state (
    stream      text primary key,
    watermark   timestamptz not null,
    updated_at  timestamptz not null default now()
);

create table if not exists raw._quarantine (
    id           bigserial primary key,
    stream       text not null,
    source       text not null,
    reason       text not null,
    raw_text     text not null,
    _batch_id    text not null,
    _loaded_at   timestamptz not null default now()
);

create table if not exists raw.hubspot_contacts (
    natural_key  text primary key,
    object_id    text not null,
    event_time   timestamptz not null,
    payload      jsonb not null,
    _batch_id    text not null,
    _source      text not null,
    _loaded_at   timestamptz not null default now()
);

create table if not exists raw.sendgrid_events (
    natural_key  text primary key,
    object_id    text,
    event_time   timestamptz not null,
    payload      jsonb not null,
    _batch_id    text not null,
    _source      text not null,
    _loaded_at   timestamptz not null default now()
);

create table if not exists raw.segment_events (
    natural_key  text primary key,
    object_id    text,
    event_time   timestamptz not null,
    payload      jsonb not null,
    _batch_id    text not null,
    _source      text not null,
    _loaded_at   timestamptz not null default now()
);
