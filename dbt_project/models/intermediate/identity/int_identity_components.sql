{{ config(
    materialized='incremental',
    unique_key='node',
    incremental_strategy='replace',
    replace_key='node',
    on_schema_change='ignore',
    indexes=[
        {'columns': ['node'], 'unique': True},
        {'columns': ['graph_component']},
        {'columns': ['component']},
        {'columns': ['_updated_at']},
    ],
    post_hook=["{{ analyze_if_rebuilt('_updated_at') }}", "{{ save_watermark() }}"],
) }}
{#- The connected component of each node of the identity graph; groups above
    identity_max_identifiers are not merged.
    Method, grain and incremental logic: its docs block in _int_identity__docs.md. -#}
with recursive
{%- if is_incremental() %}
stored as not materialized (
    select * from {{ this }}
),

seeds as (
    select node from {{ ref('int_identity_nodes') }} where _updated_at > {{ watermark() }}
    union
    select node_a from {{ ref('int_identity_edges') }} where _updated_at > {{ watermark() }}
    union
    select node_b from {{ ref('int_identity_edges') }} where _updated_at > {{ watermark() }}
),

region as (
    select node from seeds
    union
    select stored.node
    from stored
    where stored.graph_component in (
        select graph_component from stored where node in (select node from seeds)
    )
),
{%- endif %}

nodes as (
    select node from {{ ref('int_identity_nodes') }}
    where is_active
    {%- if is_incremental() %} and node in (select node from region){% endif %}
),

active_edges as (
    select node_a, node_b from {{ ref('int_identity_edges') }}
    where is_active
    {%- if is_incremental() %}
      and node_a in (select node from region) and node_b in (select node from region)
    {%- endif %}
),

edges as (
    select node_a as src, node_b as dst from active_edges
    union
    select node_b, node_a from active_edges
),

walk (node, reached) as (
    select node, node from nodes
    union
    select walk.node, edges.dst
    from walk
    join edges on edges.src = walk.reached
),

components as (
    -- a component is named by its smallest node, whatever the order edges arrived in
    select node, min(reached) as component
    from walk
    group by node
),

sized as (
    select components.*, count(*) over (partition by component) as component_size
    from components
),

computed as (
    select
        sized.node,
        case when sized.component_size > {{ var('identity_max_identifiers') }} then sized.node
             else sized.component end as component,
        sized.component as graph_component,
        sized.component_size,
        sized.component_size > {{ var('identity_max_identifiers') }} as is_over_cap
    from sized
),

{% if is_incremental() %}
final as (
    select
        computed.*,
        case when stored.node is not null
                  and stored.component = computed.component
                  and stored.graph_component = computed.graph_component
                  and stored.component_size = computed.component_size
             then stored._updated_at else now() end as _updated_at
    from computed
    left join stored using (node)
)

{{ replace_rows('final', 'region', 'region.node') }}
{% else %}
final as (
    select computed.*, now() as _updated_at from computed
)

select * from final
{% endif %}
