{#- Who may read a mart (README, "Roles"), applied by a post-hook after every build of every mart:
    a rebuilt table starts with no grants, and an incremental one gets any new column covered.
    - the reporter: every column;
    - the analyst: every column except the direct identifiers. A column is an identifier when its
      YAML entry says so (config: meta: identifier: true); a column whose entry says nothing (or
      that has no entry at all: a model added later) is one when its name matches the var
      identifier_column_pattern. `identifier: false` lets a matching name through on purpose.
    Built as the transformer, which owns the marts and so may grant on them. -#}
{% macro grant_mart_access() %}
    {%- if execute -%}
        {%- set analyst = env_var('TOUCHPOINT_DBT_ANALYST_ROLE', 'analyst') -%}
        {%- set reporter = env_var('TOUCHPOINT_DBT_REPORTER_ROLE', 'reporter') -%}
        {%- set readable = [] -%}
        {%- for column in adapter.get_columns_in_relation(this) -%}
            {%- if not is_identifier_column(column.name) -%}
                {%- do readable.append(adapter.quote(column.name)) -%}
            {%- endif -%}
        {%- endfor %}
        {#- revoking the table privilege revokes every column privilege too (an incremental model
            keeps its grants: a column marked since loses the analyst's) #}
        revoke all on {{ this }} from {{ adapter.quote(analyst) }}, {{ adapter.quote(reporter) }};
        grant select on {{ this }} to {{ adapter.quote(reporter) }};
        {%- if readable %}
        grant select ({{ readable | join(', ') }}) on {{ this }} to {{ adapter.quote(analyst) }};
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

{% macro is_identifier_column(column_name) %}
    {#- The column's declared decision, else the name pattern (see grant_mart_access). -#}
    {%- set declared = model.columns.get(column_name | lower) if model.columns else none -%}
    {%- set meta = {} -%}
    {%- if declared -%}
        {%- do meta.update(declared.meta or {}) -%}
        {%- if declared.config and declared.config.meta -%}
            {%- do meta.update(declared.config.meta) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if meta.get('identifier') is not none -%}
        {{ return(meta.get('identifier') in (true, 'true', 'yes')) }}
    {%- endif -%}
    {{ return(modules.re.match(var('identifier_column_pattern'), column_name | lower) is not none) }}
{% endmacro %}
