{{ config(materialized='table', indexes=[{'columns': ['node'], 'unique': True}]) }}
{#- Every identifier seen anywhere, with when it was first seen. -#}
with contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

segment_events as (
    select * from {{ ref('stg_segment__events') }}
),

email_events as (
    select * from {{ ref('stg_sendgrid__events') }}
),

edges as (
    select * from {{ ref('int_identity_edges') }}
),

exclusions as (
    select * from {{ ref('identity_exclusions') }}
),

seen as (
    select 'hubspot_contact:' || contact_id as node, created_at as seen_at from contacts
    union all
    select 'email:' || email, min(occurred_at) from email_events where email is not null group by email
    union all
    select 'segment_user:' || user_id, min(occurred_at) from segment_events where user_id is not null group by user_id
    union all
    select 'segment_anonymous:' || anonymous_id, min(occurred_at) from segment_events
    where anonymous_id is not null group by anonymous_id
    union all
    select node_a, first_seen_at from edges
    union all
    select node_b, first_seen_at from edges
),

first_seen as (
    select node, min(seen_at) as first_seen_at
    from seen
    group by node
),

final as (
    select
        node,
        split_part(node, ':', 1) as identifier_type,
        substr(node, length(split_part(node, ':', 1)) + 2) as identifier,
        first_seen_at,
        exists (
            select 1 from exclusions where first_seen.node like 'email:' || exclusions.local_part || '@%'
        ) as is_excluded
    from first_seen
)

select * from final
