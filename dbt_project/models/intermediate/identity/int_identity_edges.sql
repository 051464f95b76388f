{{ config(
    materialized='incremental',
    unique_key=['node_a', 'node_b', 'edge_source'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['node_a']}, {'columns': ['node_b']}, {'columns': ['_updated_at']}],
    post_hook=["{{ analyze_if_rebuilt('_updated_at') }}", "{{ save_watermark() }}"],
) }}
{#- Every pair of identifiers a source says belong to the same person ('<type>:<value>' nodes).
    Method, grain and incremental logic: its docs block in _int_identity__docs.md. -#}
with contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ watermark() }}
    {%- endif %}
),

segment_events as (
    select * from {{ ref('stg_segment__events') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ watermark() }}
    {%- endif %}
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

edges as (
    -- node_a is never an email, so only node_b can be an excluded address
    select node_a, node_b, edge_source, min(seen_at) as first_seen_at, true as is_active
    from raw_edges
    where node_a <> node_b
      and not exists (select 1 from exclusions where raw_edges.node_b like 'email:' || exclusions.local_part || '@%')
    group by node_a, node_b, edge_source
),

{% if is_incremental() %}
stored as not materialized (
    select * from {{ this }}
),

recomputed as (
    -- the restaged contacts' edges as they are now
    select * from edges where edge_source like 'hubspot%'
    union all
    -- ... and those they no longer make
    select stored.node_a, stored.node_b, stored.edge_source, null, false
    from stored
    where stored.is_active
      and stored.edge_source like 'hubspot%'
      and stored.node_a in (select 'hubspot_contact:' || contact_id from contacts)
      and not exists (
          select 1 from edges
          where edges.node_a = stored.node_a and edges.node_b = stored.node_b and edges.edge_source = stored.edge_source
      )
    union all
    -- Segment edges only ever gain sightings
    select edges.node_a, edges.node_b, edges.edge_source,
           least(edges.first_seen_at, stored.first_seen_at), true
    from edges
    left join stored using (node_a, node_b, edge_source)
    where edges.edge_source like 'segment%'
),

final as (
    select recomputed.*, now() as _updated_at
    from recomputed
    left join stored using (node_a, node_b, edge_source)
    where stored.node_a is null
       or stored.is_active <> recomputed.is_active
       or stored.first_seen_at is distinct from recomputed.first_seen_at
)
{% else %}
final as (
    select edges.*, now() as _updated_at from edges
)
{% endif %}

select * from final
