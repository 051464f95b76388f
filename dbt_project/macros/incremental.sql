{#- Incremental builds: what each model has already processed, and how it replaces rows.

    Every incremental model downstream of staging keeps a watermark in
    intermediate.dbt_incremental_state: the start of the transaction of its last successful
    build (saved by save_watermark(), a post-hook, so it commits with the model's rows). Its
    next run re-processes what changed upstream after it:
      - staging rows loaded after it (`_loaded_at`, the raw load time), and
      - intermediate rows changed after it (`_updated_at`, written by the upstream model).
    Both clocks are the database's now(). The raw load time is only safe as a change marker
    because no extract of a stream runs while dbt builds (the ingest DAG extracts, then builds,
    one run at a time); the staging models themselves do not rely on it (they compare with the
    newest load they hold).

    A missing watermark means "everything changed": the model then re-processes all of its
    input, which gives the same rows as a full refresh, only slower. -#}

{% macro state_relation() -%}
    intermediate.dbt_incremental_state
{%- endmacro %}

{% macro create_incremental_state() %}
    {#- on-run-start: the watermark table (created once; dbt never drops it). The schema is made
        only when missing: `create schema if not exists` needs CREATE on the database even when
        the schema exists, and a database copied from another (a template, a restore) has lost
        that grant to the transformer until the warehouse's owner runs its DDL again. -#}
    do $$ begin
        if to_regnamespace('intermediate') is null then create schema intermediate; end if;
    end $$;
    create table if not exists {{ state_relation() }} (
        model            text primary key,
        processed_until  timestamptz not null,
        saved_at         timestamptz not null default now(),
        as_of            timestamptz
    );
    alter table {{ state_relation() }} add column if not exists as_of timestamptz;
{% endmacro %}

{% macro saved_state(column, incremental_only=true) -%}
    {#- `column` of this model's row in the state table, as a timestamptz literal (so the
        planner sees a constant and uses the change indexes): '-infinity' when no row was
        saved, and on a full build unless incremental_only is false. -#}
    {%- set value = none -%}
    {%- if execute and (is_incremental() or not incremental_only) -%}
        {%- set result = run_query("select " ~ column ~ "::text from " ~ state_relation()
                                   ~ " where model = '" ~ this.schema ~ "." ~ this.identifier ~ "'") -%}
        {%- if result.rows | length > 0 -%}{%- set value = result.rows[0][0] -%}{%- endif -%}
    {%- endif -%}
    '{{ value if value else "-infinity" }}'::timestamptz
{%- endmacro %}

{% macro saved_watermark() -%}
    {#- The watermark saved for `this` whatever the materialization (the snapshot uses it;
        models use watermark()). -#}
    {{- saved_state('processed_until', incremental_only=false) -}}
{%- endmacro %}

{% macro watermark() -%}
    {#- The model's watermark; '-infinity' on a full build or when none was saved. -#}
    {{- saved_state('processed_until') -}}
{%- endmacro %}

{% macro analyze_if_rebuilt(change_column=none) %}
    {#- post-hook: statistics for the plans of the models after this one. After a full build,
        of the whole table. After an incremental run, of its change column only (_updated_at,
        _loaded_at): the rows it just wrote are newer than any statistics, so without this the
        planner takes every change set downstream for a single row and joins thousands of
        rows by nested loops. -#}
    {% if not is_incremental() %}analyze {{ this }}{% elif change_column %}analyze {{ this }} ({{ change_column }}){% endif %}
{% endmacro %}

{% macro save_watermark(as_of=none) %}
    {#- post-hook, inside the model's transaction: everything committed upstream before this
        transaction began is now reflected in the model. `as_of`: optional SQL for the data time
        the model's rows were judged at (dim_customers' health), kept for its next run. -#}
    insert into {{ state_relation() }} (model, processed_until, saved_at, as_of)
    values ('{{ this.schema }}.{{ this.identifier }}', now(), clock_timestamp(), {{ as_of if as_of else 'null' }})
    on conflict (model) do update
        set processed_until = excluded.processed_until, saved_at = excluded.saved_at, as_of = excluded.as_of
{% endmacro %}

{% macro saved_as_of() -%}
    {#- The as_of the model saved with its watermark ('-infinity' when none). -#}
    {{- saved_state('as_of') -}}
{%- endmacro %}

{% macro newest_loaded_at() -%}
    {#- Staging: the newest raw load time already staged, as a literal ('-infinity' when none). -#}
    {%- set value = none -%}
    {%- if execute and is_incremental() -%}
        {%- set result = run_query("select max(_loaded_at)::text from " ~ this) -%}
        {%- if result.rows | length > 0 -%}{%- set value = result.rows[0][0] -%}{%- endif -%}
    {%- endif -%}
    '{{ value if value else "-infinity" }}'::timestamptz
{%- endmacro %}

{% macro ensure_loaded_at_index(relation) %}
    {#- pre-hook of a staging model: its incremental filter reads raw rows by load time, which
        needs an index on the raw table's _loaded_at. Created once, if the raw layer has none
        (the raw DDL is the better home for it; this keeps the staging model self-sufficient). -#}
    do $$
    begin
        if not exists (
            select 1 from pg_index as i
            join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
            where i.indrelid = '{{ relation.schema }}.{{ relation.identifier }}'::regclass
              and a.attname = '_loaded_at'
        ) then
            create index on {{ relation.schema }}.{{ relation.identifier }} (_loaded_at);
        end if;
    end
    $$
{% endmacro %}

{% macro ensure_indexes() %}
    {#- post-hook of every model: on an incremental run, create the configured indexes the table
        lacks. dbt creates them only with the table, so an index added to a model later would
        reach a warehouse built before only by a full refresh. -#}
    {%- if execute and config.get('indexes') and is_incremental() -%}
        {%- set existing = run_query(
            "select array_to_string(array(select a.attname from unnest(i.indkey) with ordinality"
            ~ " as k(attnum, n) join pg_attribute as a on a.attrelid = i.indrelid"
            ~ " and a.attnum = k.attnum order by k.n), ',')"
            ~ " || case when i.indisunique then ':unique' else '' end"
            ~ " from pg_index as i where i.indrelid = '" ~ this ~ "'::regclass") -%}
        {%- set have = existing.columns[0].values() -%}
        {%- for index in config.get('indexes') -%}
            {%- if index['columns'] | join(',') ~ (':unique' if index.get('unique') else '') not in have %}
    {{ get_create_index_sql(this, index) }};
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}

{% macro replace_rows(rows, groups, group_key, from_key=none) -%}
    {#- The incremental select of a 'replace' model: the new rows of `rows`, then one marker row
        per group of `groups` (group_key, and from_key: the smallest replace_from_key value to
        replace, null for the whole group). The markers are joined "on false": their data
        columns are typed nulls and no join work is done, whatever the planner estimates. -#}
    select null as _replace_key{% if from_key %}, null as _replace_from{% endif %}, {{ rows }}.*
    from {{ rows }}
    union all
    select {{ group_key }}{% if from_key %}, {{ from_key }}{% endif %}, {{ rows }}.*
    from {{ groups }}
    left join {{ rows }} on false
{%- endmacro %}

{% macro get_incremental_replace_sql(arg_dict) %}
    {#- Strategy 'replace': replaces groups of rows, including groups that now have fewer rows
        or none. The model's incremental select (replace_rows) returns its new rows and one
        marker per group, whose unique_key is null:
          _replace_key   the group (config replace_key names the target column it matches),
          _replace_from  optional: only the group's rows with replace_from_key >= it are
                         replaced (null: the whole group).
        Every target row of a marked group is deleted, then the new rows are inserted. The
        model's select (the temp table) is computed before the delete, so it may read the
        target's old rows. A new row outside the marked groups would duplicate a key: the
        models' unique indexes make that an error, not a silent double. -#}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set group_key = config.require('replace_key') -%}
    {%- set from_key = config.get('replace_from_key') -%}
    {%- set row_key = arg_dict['unique_key'] -%}
    {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as target_rows
    using (
        select distinct _replace_key{% if from_key %}, _replace_from{% endif %}
        from {{ source }}
        where _replace_key is not null
    ) as replaced
    where target_rows.{{ group_key }} = replaced._replace_key
    {%- if from_key %}
      and (replaced._replace_from is null or target_rows.{{ from_key }} >= replaced._replace_from)
    {%- endif %};

    insert into {{ target }} ({{ cols }})
    select {{ cols }} from {{ source }} where {{ row_key }} is not null
{% endmacro %}
