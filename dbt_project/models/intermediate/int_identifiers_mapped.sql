{#- Thin identity resolution: every identifier a source gives us, mapped to a normalised email
    and a customer_key (a hash of that email). The full identity graph (merged contacts,
    exclusion of shared addresses, stable keys across merges) replaces this later. -#}
with contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

segment_events as (
    select * from {{ ref('stg_segment__events') }}
),

email_events as (
    select * from {{ ref('stg_sendgrid__events') }}
),

observed as (
    select 'hubspot_contact' as identifier_type, contact_id as identifier, email, created_at as seen_at
    from contacts where email is not null
    union all
    select 'email', email, email, created_at from contacts where email is not null
    union all
    select 'segment_user', user_id, traits_email, occurred_at
    from segment_events where event_type = 'identify' and user_id is not null and traits_email is not null
    union all
    select 'segment_anonymous', anonymous_id, traits_email, occurred_at
    from segment_events where event_type = 'identify' and anonymous_id is not null and traits_email is not null
    union all
    select 'email', email, email, min(occurred_at) from email_events where email is not null group by email
),

first_seen as (
    -- an identifier seen with several emails keeps the first one
    select distinct on (identifier_type, identifier)
        identifier_type, identifier, email, seen_at
    from observed
    order by identifier_type, identifier, seen_at, email
),

final as (
    select
        identifier_type,
        identifier,
        email,
        md5('email:' || email) as customer_key,
        seen_at as first_seen_at
    from first_seen
)

select * from final
