{{ config(materialized='table', indexes=[{'columns': ['identifier_type', 'identifier'], 'unique': True}]) }}
{#- Every identifier, the customer it resolves to, and why. customer_key is a hash of the
    component's anchor: its earliest-seen person identifier (email, HubSpot contact or Segment
    user). A later identifier joining the group therefore keeps the existing key. Groups of
    only anonymous devices, and shared addresses, resolve to no customer. -#}
with nodes as (
    select * from {{ ref('int_identity_nodes') }}
),

components as (
    select * from {{ ref('int_identity_components') }}
),

members as (
    select nodes.*, components.component, components.component_size, components.is_over_cap
    from nodes
    join components using (node)
),

anchors as (
    select distinct on (component)
        component,
        node as anchor_node
    from members
    where identifier_type in ('email', 'hubspot_contact', 'segment_user') and not is_excluded
    order by component, first_seen_at, node
),

emails as (
    select distinct on (component) component, identifier as email
    from members
    where identifier_type = 'email' and not is_excluded
    order by component, first_seen_at, identifier
),

final as (
    select
        members.identifier_type || ':' || members.identifier as identifier_node,
        members.identifier_type,
        members.identifier,
        emails.email,
        case when anchors.anchor_node is not null and not members.is_excluded
             then md5('customer:' || anchors.anchor_node) end as customer_key,
        anchors.anchor_node,
        members.component_size,
        members.is_over_cap,
        members.first_seen_at
    from members
    left join anchors using (component)
    left join emails using (component)
)

select * from final
