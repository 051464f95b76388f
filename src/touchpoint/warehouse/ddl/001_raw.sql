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

-- Every stream table has the same shape; a stream declares only its name
-- (touchpoint.sources.catalog), and the loader creates its table through this function.
drop function if exists raw._create_stream_table(text);  -- before objects had versions
create or replace function raw._create_stream_table(stream_table text, versioned boolean)
returns void
language plpgsql as $$
begin
    execute format($ddl$
        create table if not exists raw.%I (
            natural_key  text primary key,
            object_id    text,
            event_time   timestamptz not null,
            payload      jsonb not null,
            _batch_id    text not null,
            _source      text not null,
            _loaded_at   timestamptz not null default now()
        )$ddl$, stream_table);
    -- the staging models read raw rows by load time (their incremental filter); created here by
    -- the owner, since dbt runs as the transformer, which may read raw but not alter it. The
    -- name is the one PostgreSQL gives `create index on raw.<t> (_loaded_at)`, which dbt's
    -- ensure_loaded_at_index ran before, so an existing index is not made twice.
    -- Only when missing: even `create index if not exists` takes a SHARE lock on the table
    -- before it looks, and a loader of another task holding the table while it waits for
    -- raw._batches would deadlock with this transaction (as a parallel extract once did).
    if to_regclass(format('raw.%I', left(stream_table || '__loaded_at_idx', 63))) is null then
        execute format('create index if not exists %I on raw.%I (_loaded_at)',
                       left(stream_table || '__loaded_at_idx', 63), stream_table);
    end if;
    -- the quality gate reads a day of events, and the newest and oldest event, by event time:
    -- without it every check scans the stream's whole history
    if to_regclass(format('raw.%I', left(stream_table || '_event_time_idx', 63))) is null then
        execute format('create index if not exists %I on raw.%I (event_time)',
                       left(stream_table || '_event_time_idx', 63), stream_table);
    end if;
    -- versioned streams (the CRM's): staging reads every version of the objects that changed
    -- (a deletion keeps the values of the object's last live version)
    if versioned and to_regclass(format('raw.%I', left(stream_table || '__object_id_idx', 63))) is null then
        execute format('create index if not exists %I on raw.%I (object_id)',
                       left(stream_table || '__object_id_idx', 63), stream_table);
    end if;
end
$$;

-- The landing-file ledger: every file version a run has loaded. A run lists its interval's day
-- folders and a lookback before them, and loads each file version not in here, so a file that
-- lands after its day's run is loaded by a later one (late = loaded by a run whose interval
-- does not hold its day). A file rewritten with another size or etag is a new version.
create table if not exists raw._files (
    stream         text not null,
    location       text not null,
    version        text not null,
    size_bytes     bigint not null,
    folder_day     date,
    loaded_at      timestamptz not null default now(),
    run_start      timestamptz,
    run_end        timestamptz,
    late           boolean not null default false,
    records        integer not null default 0,
    quarantined    integer not null default 0,
    _batch_id      text not null,
    primary key (stream, location, version)
);
create index if not exists _files_run_idx on raw._files (stream, run_start);

-- When a quarantined record was received at the latest (a replay judges its time by the same
-- bound), and whether it was replayed after a fix (touchpoint quarantine replay): when, into
-- which batch; the row stays, for the record of what happened. Only when missing: `alter
-- table` locks exclusively even when the column exists (see 005_privacy.sql).
do $$
begin
    if not exists (select from pg_attribute
                   where attrelid = 'raw._quarantine'::regclass and attname = 'replayed_at'
                     and not attisdropped) then
        alter table raw._quarantine add column received_by timestamptz,
                                    add column replayed_at timestamptz,
                                    add column replay_batch_id text;
    end if;
end
$$;

-- The CRM request budget shared by every extract task of a deployment (extract.request_budget):
-- the moment the next request of an account may go out.
create table if not exists raw._request_budget (
    account  text primary key,
    next_at  timestamptz not null
);
