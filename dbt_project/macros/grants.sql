{#- Who may read a mart, a seed or a restricted view (README, "Roles"), applied by a post-hook
    after every build: a rebuilt table starts with no grants.
    - the reporter: everything;
    - the analyst: every mart and seed whole (`select *` works), and nothing in `restricted`.
    So that no column grant is needed, a relation the analyst reads may hold no direct identifier:
    the build stops on one. A column is an identifier when its YAML entry says so (config: meta:
    identifier: true); a column whose entry says nothing (or that has no entry at all: a model
    added later) is one when its name matches the var identifier_column_pattern.
    `identifier: false` lets a matching name through on purpose. Identifiers live in the
    `restricted` schema (models/restricted), the reporter's only.
    Built as the transformer, which owns these relations and so may grant on them. -#}
{% macro grant_mart_access(analyst=true) %}
    {%- if execute -%}
        {%- set analyst_role = env_var('TOUCHPOINT_DBT_ANALYST_ROLE', 'analyst') -%}
        {%- set reporter_role = env_var('TOUCHPOINT_DBT_REPORTER_ROLE', 'reporter') -%}
        {%- if analyst -%}
            {%- set identifiers = [] -%}
            {%- for column in adapter.get_columns_in_relation(this) -%}
                {%- if is_identifier_column(column.name) -%}
                    {%- do identifiers.append(column.name) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if identifiers -%}
                {{ exceptions.raise_compiler_error(
                    this ~ " is the analyst's to read whole but holds direct identifiers (" ~ identifiers | join(', ')
                    ~ "): move them to a model in models/restricted, or mark a column that is not one"
                    ~ " with config: meta: identifier: false") }}
            {%- endif -%}
        {%- endif %}
        {#- revoking the table privilege revokes every column privilege too (tables granted by
            column before) #}
        revoke all on {{ this }} from {{ adapter.quote(analyst_role) }}, {{ adapter.quote(reporter_role) }};
        grant select on {{ this }} to {{ adapter.quote(reporter_role) }};
        {%- if analyst %}
        grant select on {{ this }} to {{ adapter.quote(analyst_role) }};
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
