{#- Uniqueness, answered by the catalog when the database already enforces it: a valid unique
    index on exactly the tested columns (not partial, not on an expression) admits no two rows
    with equal non-null values in all of them, which is precisely what these tests check, so the
    table need not be scanned (on a large incremental table that scan is most of a one-day
    build's tests). Otherwise dbt's query; in the daily scope (macros/test_scope.sql) only for
    the keys of the rows the build wrote, compared with the whole table. -#}
{% macro unique_index_on(model, columns) -%}
    {%- if not execute or model.identifier is not defined -%}{{ return(false) }}{%- endif -%}
    {%- for column in columns if not modules.re.match('^[a-z_][a-z0-9_]*$', column) -%}
        {{- return(false) -}}
    {%- endfor -%}
    {%- set check -%}
        select count(*)
        from pg_index as i
        join pg_class as c on c.oid = i.indrelid
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = '{{ model.schema }}'
          and c.relname = '{{ model.identifier }}'
          and i.indisunique and i.indisvalid and i.indnkeyatts = {{ columns | length }}
          and i.indpred is null and i.indexprs is null
          and (
              select array_agg(a.attname::text order by a.attname)
              from pg_attribute as a
              where a.attrelid = i.indrelid and a.attnum = any (i.indkey[0:i.indnkeyatts - 1])
          ) = array[{% for column in columns | sort %}'{{ column }}'{{ ', ' if not loop.last }}{% endfor %}]::text[]
    {%- endset -%}
    {{- return(run_query(check).rows[0][0] > 0) -}}
{%- endmacro %}

{% macro postgres__test_unique(model, column_name) %}
    {%- if unique_index_on(model, [column_name]) %}
    -- proven by a unique index on {{ model }} ({{ column_name }})
    select null::text as unique_field, 0 as n_records where false
    {%- elif tests_read_written_rows(model) %}
    select {{ column_name }} as unique_field, count(*) as n_records
    from {{ model }}
    where {{ column_name }} in (select {{ column_name }} from {{ written_rows(model) }})
    group by {{ column_name }}
    having count(*) > 1
    {%- else %}
    {{ dbt.default__test_unique(model, column_name) }}
    {%- endif %}
{% endmacro %}

{#- Unique over several columns: no two rows share the same non-null values in all of them
    (a row with a null in one of them is not compared, as a unique index does). -#}
{% test unique_columns(model, columns) %}
{%- if unique_index_on(model, columns) %}
-- proven by a unique index on {{ model }} ({{ columns | join(', ') }})
select {% for column in columns %}null::text as {{ column }}, {% endfor %}0 as n_records where false
{%- else %}
select {{ columns | join(', ') }}, count(*) as n_records
from {{ model }}
where {% for column in columns %}{{ column }} is not null{{ ' and ' if not loop.last }}{% endfor %}
{%- if tests_read_written_rows(model) %}
  and ({{ columns | join(', ') }}) in (select {{ columns | join(', ') }} from {{ written_rows(model) }})
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
{%- endif %}
{% endtest %}

{#- Not null, for several columns of one model in one scan: one dbt node and one query where a
    test per column costs a node and a full read each; columns the catalog declares NOT NULL
    are not read, and in the daily scope only the rows the build wrote.
    Each failing row names a column and how many of its rows are null. -#}
{% test not_null_columns(model, columns) %}
{%- set proven = proven_not_null(model, columns) -%}
{%- set columns = columns | reject('in', proven) | list -%}
{%- if not columns %}
-- proven by NOT NULL on {{ model }}
select null::text as column_name, 0 as null_rows where false
{%- else %}
with nulls as (
    select
    {%- for column in columns %}
        count(*) filter (where {{ column }} is null) as null_rows_{{ loop.index }}
        {{- "," if not loop.last }}
    {%- endfor %}
    from {{ written_rows(model) }}
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
{%- endif %}
{% endtest %}
