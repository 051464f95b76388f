-- Least-privilege roles, one per stage (README, "Roles"). Group roles, NOLOGIN: the login user
-- (the warehouse's owner, who runs this file) is a member of each and every stage takes its own
-- with SET ROLE (touchpoint.warehouse.connection). Their names come from the settings
-- (TOUCHPOINT_ROLE_*), which ensure_schema passes as touchpoint.role_* for this transaction.
--   loader       writes raw.*, reads privacy.tombstones
--   transformer  reads raw.*, owns the dbt schemas (staging, intermediate, marts, seeds,
--                snapshots), writes dq.* (the data-quality checks run as it) and ops.*
--   analyst      reads the marts and the seeds, whole (no mart holds a direct identifier; granted
--                by dbt after each build: macros/grants.sql); nothing else
--   reporter     reads the marts, the seeds, the restricted views (who the customers are) and
--                ops.ingest_intervals, writes the send log reporting.deliveries
-- Every statement is idempotent; grants are re-applied at each run, so a table created since
-- (a new raw stream) gets its privileges too.

-- Roles are cluster-wide while the advisory lock of ensure_schema is per database: two
-- databases of one cluster may create the same role at once, hence the exception handlers.
do $$
declare
    r text;
begin
    foreach r in array array[current_setting('touchpoint.role_loader'), current_setting('touchpoint.role_transformer'),
                             current_setting('touchpoint.role_analyst'), current_setting('touchpoint.role_reporter')]
    loop
        if not exists (select from pg_roles where rolname = r) then
            begin
                execute format('create role %I nologin', r);
            exception when duplicate_object or unique_violation then
                null;  -- created meanwhile by another database's run
            end;
        end if;
        -- A non-superuser owner with CREATEROLE (an external warehouse) must be a member to
        -- SET ROLE and to hand objects to the role; a superuser is a member of every role.
        if not pg_has_role(current_user, r, 'member') then
            begin
                execute format('grant %I to %I', r, current_user);
            exception when duplicate_object or unique_violation then
                null;
            end;
        end if;
    end loop;
end
$$;

do $$
declare
    loader      text := current_setting('touchpoint.role_loader');
    transformer text := current_setting('touchpoint.role_transformer');
    analyst     text := current_setting('touchpoint.role_analyst');
    reporter    text := current_setting('touchpoint.role_reporter');
    layer       text;
    rel         record;
begin
    -- Nothing in the warehouse for everyone: connecting, temporary tables only through a role.
    execute format('grant connect, temporary on database %I to %I, %I, %I, %I',
                   current_database(), loader, transformer, analyst, reporter);

    -- raw: the loader writes (inserts, batch counters, watermarks), the transformer reads.
    execute format('grant usage on schema raw to %I, %I', loader, transformer);
    execute format('grant select, insert, update on all tables in schema raw to %I', loader);
    execute format('grant usage on all sequences in schema raw to %I', loader);
    execute format('grant select on all tables in schema raw to %I', transformer);
    -- stream tables created later by this owner (raw._create_stream_table)
    execute format('alter default privileges in schema raw grant select, insert, update on tables to %I', loader);
    execute format('alter default privileges in schema raw grant usage on sequences to %I', loader);
    execute format('alter default privileges in schema raw grant select on tables to %I', transformer);

    -- privacy (erasure, 005_privacy.sql): the loader skips erased keys, dbt may exclude them.
    if to_regnamespace('privacy') is not null then
        execute format('grant usage on schema privacy to %I, %I', loader, transformer);
    end if;
    if to_regclass('privacy.tombstones') is not null then
        execute format('grant select on privacy.tombstones to %I, %I', loader, transformer);
    end if;
    -- the pseudonym secret keys the customer and visitor keys dbt derives (005_privacy.sql)
    if to_regclass('privacy.pseudonym_key') is not null then
        execute format('grant select on privacy.pseudonym_key to %I', transformer);
    end if;

    -- The dbt schemas belong to the transformer; it creates and replaces everything in them.
    -- A warehouse built before the roles existed has them owned by the login user: hand them over.
    execute format('grant create on database %I to %I', current_database(), transformer);
    foreach layer in array array['staging', 'intermediate', 'marts', 'restricted', 'seeds', 'snapshots'] loop
        if to_regnamespace(layer) is null then
            begin
                execute format('create schema %I authorization %I', layer, transformer);
            exception when duplicate_schema then
                null;
            end;
        elsif (select nspowner::regrole::text from pg_namespace where nspname = layer) <> quote_ident(transformer) then
            execute format('alter schema %I owner to %I', layer, transformer);
        end if;
        for rel in
            select c.relname, c.relkind from pg_class as c
            where c.relnamespace = to_regnamespace(layer) and c.relkind in ('r', 'p', 'v', 'm', 'f')
              and c.relowner <> to_regrole(quote_ident(transformer))
        loop
            execute format('alter %s %I.%I owner to %I',
                           case rel.relkind when 'v' then 'view' when 'm' then 'materialized view'
                                            when 'f' then 'foreign table' else 'table' end,
                           layer, rel.relname, transformer);
        end loop;
    end loop;
    -- Marts and seeds: the schemas are open to readers, restricted to the reporter; each
    -- relation's grants come from dbt (macros/grants.sql).
    execute format('grant usage on schema marts, seeds to %I, %I', analyst, reporter);
    execute format('grant usage on schema restricted to %I', reporter);
    execute format('revoke all on schema restricted from %I', analyst);

    -- Data-quality results are written by the checks, which run as the transformer.
    execute format('grant usage on schema dq to %I', transformer);
    execute format('grant select, insert, update, delete on all tables in schema dq to %I', transformer);

    -- ops: the ingest records completed intervals (transformer), the report waits on them (reporter).
    execute format('grant usage on schema ops to %I, %I', transformer, reporter);
    execute format('grant select, insert, update on ops.ingest_intervals to %I', transformer);
    execute format('grant select on ops.ingest_intervals to %I', reporter);

    -- reporting: the send log, written by the report and the failure alerts.
    execute format('grant usage on schema reporting to %I', reporter);
    execute format('grant select, insert, update on reporting.deliveries to %I', reporter);
end
$$;
