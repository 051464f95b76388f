{{ config(materialized='table') }}
{#- Every source event in one shape, classified through the touchpoint_taxonomy seed.
    Events no taxonomy row matches keep a null touchpoint and are reported by the
    `assert_every_event_is_classified` warning test instead of being dropped silently. -#}
with taxonomy as (
    select * from {{ ref('touchpoint_taxonomy') }}
),

identifiers as (
    select * from {{ ref('int_identifiers_mapped') }}
),

segment_events as (
    select * from {{ ref('stg_segment__events') }}
),

identified_web as (
    select * from {{ ref('int_segment_events_identified') }}
),

email_events as (
    select * from {{ ref('stg_sendgrid__events') }}
),

contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

crm_activity as (
    -- every CRM object that can be an interaction, in one shape, keyed to its contact
    select 'call:' || call_id as source_event_id, 'call' as event_type,
           coalesce(direction, 'outbound') as event_detail, occurred_at, contact_id
    from {{ ref('stg_hubspot__calls') }}
    union all
    select 'meeting:' || meeting_id, 'meeting',
           case when is_in_store then 'in_store'
                when activity_type ilike '%onboarding%' or title ilike '%onboarding%' then 'onboarding'
                else 'sales' end,
           occurred_at, contact_id
    from {{ ref('stg_hubspot__meetings') }}
    -- only meetings that took place: scheduled ones may lie in the future
    where coalesce(outcome, 'COMPLETED') = 'COMPLETED'
    union all
    select 'crm_email:' || crm_email_id, 'crm_email', direction, occurred_at, contact_id
    from {{ ref('stg_hubspot__emails') }}
    union all
    select 'deal_created:' || deal_id, 'deal_created', coalesce(deal_type, 'newbusiness'), created_at, contact_id
    from {{ ref('stg_hubspot__deals') }}
    union all
    select 'deal_closed_won:' || deal_id, 'deal_closed_won',
           case when deal_name ilike any (array['%upgrade%', '%upsell%']) then 'upgrade'
                when deal_type = 'existingbusiness' then 'renewal'
                else 'newbusiness' end,
           coalesce(closed_at, modified_at), contact_id
    from {{ ref('stg_hubspot__deals') }}
    where is_closed_won
    union all
    select 'ticket:' || ticket_id, 'ticket', category, created_at, contact_id
    from {{ ref('stg_hubspot__tickets') }}
    union all
    select 'feedback:' || feedback_id, 'feedback', survey_type, submitted_at, contact_id
    from {{ ref('stg_hubspot__feedback_submissions') }}
    union all
    select 'note:' || note_id, 'note', '*', occurred_at, contact_id from {{ ref('stg_hubspot__notes') }}
    union all
    select 'task:' || task_id, 'task', '*', occurred_at, contact_id from {{ ref('stg_hubspot__tasks') }}
),

web as (
    select
        'web' as source,
        e.message_id as source_event_id,
        e.event_type,
        case
            when e.event_type = 'track' then
                regexp_replace(lower(trim(e.track_event_name)), '[^a-z0-9]+', '_', 'g')
                || case when e.list_id ilike '%recommend%' then '_recommended' else '' end
            when e.utm_medium in ('cpc', 'ppc', 'display', 'paid_social') then 'paid'
            when coalesce(e.page_path, '/') = '/' then 'home'
            else split_part(e.page_path, '/', 2)
        end as event_detail,
        e.occurred_at,
        w.customer_key
    from segment_events as e
    left join identified_web as w on w.message_id = e.message_id
    where e.event_type in ('page', 'track', 'screen')
),

email as (
    select
        'email' as source,
        e.email_event_id as source_event_id,
        e.event_type,
        coalesce(e.category, 'uncategorised') as event_detail,
        e.occurred_at,
        i.customer_key
    from email_events as e
    left join identifiers as i
        on i.identifier_type = 'email' and i.identifier = e.email
),

crm as (
    select
        'crm' as source,
        'contact:' || c.contact_id as source_event_id,
        'contact_created' as event_type,
        coalesce(lower(c.original_source), 'unknown') as event_detail,
        c.created_at as occurred_at,
        i.customer_key
    from contacts as c
    left join identifiers as i
        on i.identifier_type = 'hubspot_contact' and i.identifier = c.contact_id
    union all
    select
        'crm', a.source_event_id, a.event_type, a.event_detail, a.occurred_at, i.customer_key
    from crm_activity as a
    left join identifiers as i
        on i.identifier_type = 'hubspot_contact' and i.identifier = a.contact_id
    where a.occurred_at is not null
),

events as (
    select * from web
    union all
    select * from email
    union all
    select * from crm
),

classified as (
    select
        events.*,
        match.touchpoint,
        match.channel,
        match.interaction,
        match.direction,
        match.journey_stage,
        coalesce(match.is_touchpoint, false) as is_touchpoint,
        match.touchpoint is null as is_unmapped
    from events
    left join lateral (
        select t.*
        from taxonomy as t
        where t.source = events.source
          and t.event_type = events.event_type
          and t.event_detail in (events.event_detail, '*')
        order by (t.event_detail = '*')
        limit 1
    ) as match on true
),

final as (
    select
        md5(source || ':' || source_event_id) as event_key,
        source,
        source_event_id,
        event_type,
        event_detail,
        occurred_at,
        customer_key,
        touchpoint,
        channel,
        interaction,
        direction,
        journey_stage,
        is_touchpoint,
        is_unmapped
    from classified
)

select * from final
