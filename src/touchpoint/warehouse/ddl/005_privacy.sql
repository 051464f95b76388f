-- Privacy: erasure requests and the tombstones that keep an erased person out of later loads.
-- A tombstone holds a hash of one identifier (never the identifier itself): the loader hashes
-- the identifiers a record carries and drops the record when one matches
-- (touchpoint.privacy.tombstones, touchpoint.extract.loader).
create schema if not exists privacy;

create table if not exists privacy.erasures (
    erasure_id    text primary key,
    erased_at     timestamptz not null default now(),
    identifiers   integer not null,                -- how many identifiers were tombstoned
    rows_removed  jsonb not null                   -- {"raw.segment_events": 12, ...}: counts only
);

create table if not exists privacy.tombstones (
    identifier_type  text not null,                -- email, hubspot_contact, segment_user, segment_anonymous
    identifier_hash  text not null,                -- sha256 hex of '<type>:<normalised identifier>'
    erasure_id       text not null references privacy.erasures (erasure_id),
    primary key (identifier_type, identifier_hash)
);

-- A load counts the records it dropped because they belong to an erased person. Only when
-- missing: `alter table` locks raw._batches exclusively even when the column exists, which
-- would wait for (and can deadlock with) loaders running in parallel.
do $$
begin
    if not exists (select from pg_attribute
                   where attrelid = 'raw._batches'::regclass and attname = 'erased' and not attisdropped) then
        alter table raw._batches add column erased integer not null default 0;
    end if;
end
$$;

-- The deployment's pseudonym secret: customer keys and visitor keys are keyed hashes of the
-- identifiers they stand for (dbt macro keyed_hash), so that whoever can guess an email cannot
-- confirm which key it is without this secret. One row, made once per warehouse and never
-- changed (a new secret would give every customer a new key, README "Pseudonymous keys"):
-- TOUCHPOINT_PSEUDONYM_SECRET when set (ensure_schema passes it as touchpoint.pseudonym_secret
-- for this transaction), else generated from PostgreSQL's strong random source. Readable by
-- the transformer only.
create table if not exists privacy.pseudonym_key (
    singleton   boolean primary key default true check (singleton),
    secret      text not null check (length(secret) >= 32),
    created_at  timestamptz not null default now()
);
insert into privacy.pseudonym_key (secret)
select coalesce(nullif(current_setting('touchpoint.pseudonym_secret', true), ''),
                replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
where not exists (select from privacy.pseudonym_key);
