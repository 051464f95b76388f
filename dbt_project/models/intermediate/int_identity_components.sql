{{ config(materialized='table', indexes=[{'columns': ['node'], 'unique': True}]) }}
{#- Connected components of the identity graph (a recursive walk over undirected edges),
    then the guards: groups above the identity_max_identifiers var are not merged. -#}
with recursive nodes as (
    select * from {{ ref('int_identity_nodes') }}
),

edges as (
    select node_a as src, node_b as dst from {{ ref('int_identity_edges') }}
    union
    select node_b, node_a from {{ ref('int_identity_edges') }}
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

final as (
    select
        sized.node,
        case when sized.component_size > {{ var('identity_max_identifiers') }} then sized.node
             else sized.component end as component,
        sized.component as graph_component,
        sized.component_size,
        sized.component_size > {{ var('identity_max_identifiers') }} as is_over_cap
    from sized
)

select * from final
