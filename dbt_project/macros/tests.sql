{#- The generic `unique` test, answered by the catalog when the database already enforces it:
    a valid unique index on exactly that column (not partial, not on an expression) admits no
    two equal non-null values, which is precisely what the test checks, so the table need not
    be scanned (on a large incremental table that scan is most of a one-day build's tests).
    Any other case, and any test with a `where` config, runs dbt's own query. -#}
{% macro postgres__test_unique(model, column_name) %}
    {%- set proven = false -%}
    {%- if execute and model.identifier is defined and model.schema is defined
          and modules.re.match('^[a-z_][a-z0-9_]*$', column_name) -%}
        {%- set check -%}
            select count(*)
            from pg_index as i
            join pg_class as c on c.oid = i.indrelid
            join pg_namespace as n on n.oid = c.relnamespace
            join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
            where n.nspname = '{{ model.schema }}'
              and c.relname = '{{ model.identifier }}'
              and i.indisunique and i.indisvalid and i.indnkeyatts = 1
              and i.indpred is null and i.indexprs is null
              and a.attname = '{{ column_name }}'
        {%- endset -%}
        {%- set proven = run_query(check).rows[0][0] > 0 -%}
    {%- endif -%}
    {%- if proven %}
    -- proven by a unique index on {{ model }} ({{ column_name }})
    select null::text as unique_field, 0 as n_records where false
    {%- else %}
    {{ dbt.default__test_unique(model, column_name) }}
    {%- endif %}
{% endmacro %}

{#- Not null, for several columns of one model in one scan: one dbt node and one query where a
    test per column costs a node and a full read each.
    Each failing row names a column and how many of its rows are null. -#}
{% test not_null_columns(model, columns) %}
with nulls as (
    select
    {%- for column in columns %}
        count(*) filter (where {{ column }} is null) as null_rows_{{ loop.index }}
        {{- "," if not loop.last }}
    {%- endfor %}
    from {{ model }}
)

select column_name, null_rows
from nulls
cross join lateral (
    values
    {%- for column in columns %}
        ('{{ column }}', null_rows_{{ loop.index }}){{ "," if not loop.last }}
    {%- endfor %}
) as counted (column_name, null_rows)
where null_rows > 0
{% endtest %}
