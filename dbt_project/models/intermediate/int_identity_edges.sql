{{ config(materialized='table', indexes=[{'columns': ['node_a']}, {'columns': ['node_b']}]) }}
{#- Every pair of identifiers a source says belong to the same person. Nodes are written
    '<type>:<value>'. Shared and role addresses (identity_exclusions seed) never link. -#}
with contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

segment_events as (
    select * from {{ ref('stg_segment__events') }}
),

exclusions as (
    select * from {{ ref('identity_exclusions') }}
),

contact_emails as (
    select contact_id, email, created_at, 'hubspot_contact_email' as edge_source
    from contacts where email is not null
    union all
    select contact_id, lower(trim(extra.email)), created_at, 'hubspot_additional_email'
    from contacts
    cross join lateral regexp_split_to_table(contacts.additional_emails, '\s*;\s*') as extra(email)
    where contacts.additional_emails is not null and trim(extra.email) <> ''
),

raw_edges as (
    select 'hubspot_contact:' || contact_id as node_a, 'email:' || email as node_b, edge_source, created_at as seen_at
    from contact_emails
    union all
    select 'hubspot_contact:' || contact_id, 'hubspot_contact:' || trim(merged.id), 'hubspot_merge', created_at
    from contacts
    cross join lateral regexp_split_to_table(contacts.merged_object_ids, '\s*;\s*') as merged(id)
    where contacts.merged_object_ids is not null and trim(merged.id) <> ''
    union all
    select 'segment_user:' || user_id, 'email:' || traits_email, 'segment_identify', occurred_at
    from segment_events where user_id is not null and traits_email is not null
    union all
    select 'segment_anonymous:' || anonymous_id, 'email:' || traits_email, 'segment_identify', occurred_at
    from segment_events where user_id is null and anonymous_id is not null and traits_email is not null
    union all
    select 'segment_anonymous:' || anonymous_id, 'segment_user:' || user_id, 'segment_event', occurred_at
    from segment_events where user_id is not null and anonymous_id is not null
    union all
    select 'segment_user:' || previous_id, 'segment_user:' || user_id, 'segment_alias', occurred_at
    from segment_events where event_type = 'alias' and previous_id is not null and user_id is not null
),

excluded_nodes as (
    select distinct raw_edges.node_b as node
    from raw_edges
    join exclusions on raw_edges.node_b like 'email:' || exclusions.local_part || '@%'
),

final as (
    select node_a, node_b, edge_source, min(seen_at) as first_seen_at
    from raw_edges
    where node_a <> node_b
      and node_a not in (select node from excluded_nodes)
      and node_b not in (select node from excluded_nodes)
    group by node_a, node_b, edge_source
)

select * from final
