{#- Tests that cost what the run changed.

    With var('test_rows') = 'written' (the daily ingest's build), the generic tests of a model
    (not_null, not_null_columns, accepted_values, relationships, unique, unique_columns) and
    the singular tests read only the rows the latest `dbt build` or `dbt run` wrote: rows whose
    xmin (the transaction that wrote them) began after that build did. A table model rebuilt
    whole is all new rows, so it is tested whole; an incremental model only in its new and
    rewritten rows. A uniqueness test compares the written rows' keys with the whole table.
    Sources, seeds, snapshots and views are always tested whole.
    With 'all' (the default, `make test`, and the weekly report's task before the report)
    every test reads the whole table. Constraints the catalog proves (a unique index, NOT NULL)
    answer their tests without reading the table in either scope. -#}

{% macro record_build_start() %}
    {#- on-run-start: where the rows this build writes begin, for the tests after it (also a
        later `dbt test`). The snapshot's xmax is the first transaction id not yet assigned:
        every model's transaction gets one at or after it. -#}
    create table if not exists {{ build_start_relation() }} (
        singleton    boolean primary key default true check (singleton),
        started_xid  xid8 not null,
        started_at   timestamptz not null
    );
    {%- if flags.WHICH in ('build', 'run') %}
    insert into {{ build_start_relation() }} (started_xid, started_at)
    values (pg_snapshot_xmax(pg_current_snapshot()), now())
    on conflict (singleton) do update
        set started_xid = excluded.started_xid, started_at = excluded.started_at;
    {%- endif %}
{% endmacro %}

{% macro build_start_relation() -%}
    intermediate.dbt_build_start
{%- endmacro %}

{% macro tests_read_written_rows(relation) -%}
    {{- return(build_start_for(relation) is not none) -}}
{%- endmacro %}

{% macro build_start_for(relation) -%}
    {#- Where the rows the tests of `relation` read begin: the low 32 bits of the recorded build
        start (what xmin holds) in the daily scope, for a model stored as a table (a view's rows
        have no xmin); none when its tests read every row. One query: on-run-start made the
        table. -#}
    {%- if not execute or var('test_rows') != 'written' or relation.identifier is not defined -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model'
            and node.config.materialized in ('table', 'incremental')
            and node.schema == relation.schema and (node.alias or node.name) == relation.identifier -%}
        {%- set result = run_query("select (started_xid::text::numeric % 4294967296)::bigint from "
                                   ~ build_start_relation()) -%}
        {{- return(result.rows[0][0] if result.rows | length > 0 else none) -}}
    {%- endfor -%}
    {{- return(none) -}}
{%- endmacro %}

{% macro written_since(start) -%}
    {#- The row's xmin at or after `start` (build_start_for), in transaction-id order (modulo
        2^32: ids wrap around; any id within 2^31 after the start is newer). -#}
    (((xmin::text::bigint - {{ start }}) + 4294967296) % 4294967296) < 2147483648
{%- endmacro %}

{% macro written_rows(relation) -%}
    {#- `relation`, or in the daily scope the subquery of its rows written by the latest build. -#}
    {%- set start = build_start_for(relation) -%}
    {%- if start is not none -%}
    (select * from {{ relation }} where {{ written_since(start) }}) as written_rows
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}

{% macro among_written(column, sources) -%}
    {#- In the daily scope: `and` column is one of the keys of the rows written by the latest
        build in any of `sources`, a list of (relation, key column) pairs; for tests whose unit
        is a group (a conversion's credits, a customer's stages). Otherwise nothing. -#}
    {%- set parts = [] -%}
    {%- for relation, key in sources -%}
        {%- set start = build_start_for(relation) -%}
        {%- if start is not none -%}
            {%- do parts.append("select " ~ key ~ " from " ~ relation ~ " where " ~ written_since(start)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if parts | length == sources | length and parts -%}
    and {{ column }} in ({{ parts | join(' union all ') }})
    {%- endif -%}
{%- endmacro %}

{% macro proven_not_null(model, columns) -%}
    {#- The columns of `columns` the catalog declares NOT NULL on `model` (none for a subquery). -#}
    {%- if not execute or model.identifier is not defined -%}{{ return([]) }}{%- endif -%}
    {%- set check -%}
        select a.attname
        from pg_attribute as a
        join pg_class as c on c.oid = a.attrelid
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = '{{ model.schema }}' and c.relname = '{{ model.identifier }}'
          and a.attnum > 0 and not a.attisdropped and a.attnotnull
    {%- endset -%}
    {%- set declared = run_query(check).columns[0].values() | list -%}
    {{- return(columns | select('in', declared) | list) -}}
{%- endmacro %}

{% macro postgres__test_not_null(model, column_name) %}
    {%- if proven_not_null(model, [column_name]) %}
    -- proven by NOT NULL on {{ model }} ({{ column_name }})
    select null::text as {{ column_name }} where false
    {%- else %}
    {{ dbt.default__test_not_null(written_rows(model), column_name) }}
    {%- endif %}
{% endmacro %}

{% macro postgres__test_accepted_values(model, column_name, values, quote=True) %}
    {{ dbt.default__test_accepted_values(written_rows(model), column_name, values, quote) }}
{% endmacro %}

{% macro postgres__test_relationships(model, column_name, to, field) %}
    {{ dbt.default__test_relationships(written_rows(model), column_name, to, field) }}
{% endmacro %}
