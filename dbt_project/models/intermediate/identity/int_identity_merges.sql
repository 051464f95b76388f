/* depends_on: {{ ref('int_identity_nodes') }} */
{{ config(
    materialized='incremental',
    unique_key='merged_node',
    incremental_strategy='replace',
    replace_key='merged_node',
    on_schema_change='ignore',
    indexes=[{'columns': ['merged_node'], 'unique': True}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- The merge log: every identifier that joined a customer other than through itself, and how.
    Method, grain and incremental logic: its docs block in _int_identity__docs.md. -#}
with
{%- if is_incremental() %}
affected as (
    select identifier_node as node from {{ ref('int_identifiers_mapped') }} where _updated_at > {{ watermark() }}
    union
    select node_a from {{ ref('int_identity_edges') }} where _updated_at > {{ watermark() }}
    union
    select node_b from {{ ref('int_identity_edges') }} where _updated_at > {{ watermark() }}
    union
    -- identifiers that are gone: their rows must go too
    select node from {{ ref('int_identity_nodes') }} where _updated_at > {{ watermark() }}
),
{%- endif %}

mapped as (
    select * from {{ ref('int_identifiers_mapped') }}
    {%- if is_incremental() %}
    where identifier_node in (select node from affected)
    {%- endif %}
),

edges as (
    select * from {{ ref('int_identity_edges') }}
    where is_active
    {%- if is_incremental() %}
      and node_a in (select node from affected)
    -- a union of two semi-joins, not `in (...) or in (...)`: that runs as two plain subplans,
    -- which past work_mem scan the affected nodes for every edge (a 7-week catch-up at M sat
    -- here for minutes)
    union
    select * from {{ ref('int_identity_edges') }}
    where is_active and node_b in (select node from affected)
    {%- endif %}
),

merged as (
    select *
    from mapped
    where customer_key is not null
      and identifier_type || ':' || identifier <> anchor_node
),

edge_ends as (
    select node_a as node, edge_source from edges
    union
    select node_b, edge_source from edges
),

links as (
    select node, string_agg(edge_source, ', ' order by edge_source) as linked_by
    from edge_ends
    group by node
),

final as (
    select
        merged.customer_key,
        merged.anchor_node,
        merged.identifier_type || ':' || merged.identifier as merged_node,
        merged.first_seen_at as merged_at,
        links.linked_by
    from merged
    left join links on links.node = merged.identifier_type || ':' || merged.identifier
)

{% if is_incremental() %}
{{ replace_rows('final', 'affected', 'affected.node') }}
{% else %}
select * from final
{% endif %}
