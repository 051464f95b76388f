{{ config(
    materialized='incremental',
    unique_key='node',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['node'], 'unique': True}, {'columns': ['_updated_at']}],
    post_hook=["{{ analyze_if_rebuilt('_updated_at') }}", "{{ save_watermark() }}"],
) }}
{#- Every identifier seen anywhere, with when it was first seen (an event part and a contact part).
    Method, grain and incremental logic: its docs block in _int_identity__docs.md. -#}
with contacts as not materialized (
    select * from {{ ref('stg_hubspot__contacts') }}
),

segment_events as not materialized (
    select * from {{ ref('stg_segment__events') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ watermark() }}
    {%- endif %}
),

email_events as (
    select * from {{ ref('stg_sendgrid__events') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ watermark() }}
    {%- endif %}
),

edges as not materialized (
    select * from {{ ref('int_identity_edges') }}
),

exclusions as (
    select * from {{ ref('identity_exclusions') }}
),

{% if is_incremental() %}
changed_edges as (
    select * from edges where _updated_at > {{ watermark() }}
),

-- nodes whose HubSpot part must be recomputed
contact_touched as (
    select 'hubspot_contact:' || contact_id as node from contacts where _loaded_at > {{ watermark() }}
    union
    select node_a from changed_edges where edge_source like 'hubspot%'
    union
    select node_b from changed_edges where edge_source like 'hubspot%'
),
{% endif %}

event_seen as (
    select 'email:' || email as node, min(occurred_at) as seen_at
    from email_events where email is not null group by email
    union all
    select 'segment_user:' || user_id, min(occurred_at) from segment_events where user_id is not null group by user_id
    union all
    select 'segment_anonymous:' || anonymous_id, min(occurred_at) from segment_events
    where anonymous_id is not null group by anonymous_id
    union all
    select node_a, first_seen_at from edges
    where edge_source like 'segment%'
    {%- if is_incremental() %} and _updated_at > {{ watermark() }}{% endif %}
    union all
    select node_b, first_seen_at from edges
    where edge_source like 'segment%'
    {%- if is_incremental() %} and _updated_at > {{ watermark() }}{% endif %}
),

contact_seen as (
    select 'hubspot_contact:' || contact_id as node, created_at as seen_at from contacts
    {%- if is_incremental() %}
    where contact_id in (
        select substr(node, length('hubspot_contact:') + 1) from contact_touched
        where split_part(node, ':', 1) = 'hubspot_contact'
    )
    {%- endif %}
    union all
    select node_a, first_seen_at from edges
    where edge_source like 'hubspot%' and is_active
    {%- if is_incremental() %} and node_a in (select node from contact_touched){% endif %}
    union all
    select node_b, first_seen_at from edges
    where edge_source like 'hubspot%' and is_active
    {%- if is_incremental() %} and node_b in (select node from contact_touched){% endif %}
),

event_part as (
    select node, min(seen_at) as event_first_seen_at from event_seen group by node
),

contact_part as (
    select node, min(seen_at) as contact_first_seen_at, true as has_contact_source
    from contact_seen group by node
),

{% if is_incremental() %}
stored as not materialized (
    select * from {{ this }}
),

parts as (
    select
        touched.node,
        least(event_part.event_first_seen_at, stored.event_first_seen_at) as event_first_seen_at,
        case when retouched.node is not null then contact_part.contact_first_seen_at
             else stored.contact_first_seen_at end as contact_first_seen_at,
        case when retouched.node is not null then coalesce(contact_part.has_contact_source, false)
             else coalesce(stored.has_contact_source, false) end as has_contact_source
    from (select node from event_part union select node from contact_touched) as touched
    -- joins, not `in (subquery)` in the select list: past work_mem that scans the subquery's
    -- rows for every node
    left join contact_touched as retouched on retouched.node = touched.node
    left join event_part on event_part.node = touched.node
    left join contact_part on contact_part.node = touched.node
    left join stored on stored.node = touched.node
),
{% else %}
parts as (
    select
        node,
        event_part.event_first_seen_at,
        contact_part.contact_first_seen_at,
        coalesce(contact_part.has_contact_source, false) as has_contact_source
    from event_part
    full join contact_part using (node)
),
{% endif %}

nodes as (
    select
        node,
        split_part(node, ':', 1) as identifier_type,
        substr(node, length(split_part(node, ':', 1)) + 2) as identifier,
        least(event_first_seen_at, contact_first_seen_at) as first_seen_at,
        exists (
            select 1 from exclusions where parts.node like 'email:' || exclusions.local_part || '@%'
        ) as is_excluded,
        event_first_seen_at,
        contact_first_seen_at,
        has_contact_source,
        event_first_seen_at is not null or has_contact_source as is_active
    from parts
),

final as (
    select nodes.*, now() as _updated_at
    from nodes
    {%- if is_incremental() %}
    left join stored using (node)
    where (stored.node is null and nodes.is_active)
       or stored.is_active <> nodes.is_active
       or stored.event_first_seen_at is distinct from nodes.event_first_seen_at
       or stored.contact_first_seen_at is distinct from nodes.contact_first_seen_at
       or stored.has_contact_source <> nodes.has_contact_source
    {%- endif %}
)

select * from final
