{{ config(materialized='table') }}
{#- The merge log: every identifier that joined a customer other than through itself, with
    the links that brought it in. One row per (identifier, customer). -#}
with mapped as (
    select * from {{ ref('int_identifiers_mapped') }}
),

edges as (
    select * from {{ ref('int_identity_edges') }}
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

select * from final
