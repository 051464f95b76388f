{#- The customer 360: one row per resolved customer. Health is judged as of the newest
    touchpoint in the warehouse, over var('health_window_days'). -#}
with identifiers as (
    select * from {{ ref('int_identifiers_mapped') }} where customer_key is not null
),

touchpoints as (
    select * from {{ ref('fct_touchpoints') }} where customer_key is not null
),

contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

email_events as (
    select * from {{ ref('stg_sendgrid__events') }}
),

segment_events as (
    select * from {{ ref('stg_segment__events') }}
),

identified_web as (
    select * from {{ ref('int_segment_events_identified') }}
),

feedback as (
    select * from {{ ref('fct_feedback') }} where customer_key is not null
),

cases as (
    select * from {{ ref('fct_support_cases') }} where customer_key is not null
),

regions as (
    select * from {{ ref('regions') }}
),

companies as (
    select * from {{ ref('stg_hubspot__companies') }}
),

as_of as (
    select coalesce(max(occurred_at), now()) as as_of_at from {{ ref('fct_touchpoints') }}
),

customers as (
    select
        customer_key,
        min(email) as email,
        min(identifier) filter (where identifier_type = 'hubspot_contact') as hubspot_contact_id,
        count(*) as identifiers,
        count(*) filter (where identifier_type = 'email') as emails,
        count(*) filter (where identifier_type = 'segment_anonymous') as devices,
        min(first_seen_at) as first_seen_at
    from identifiers
    group by customer_key
),

contact_of_customer as (
    select distinct on (customers.customer_key) customers.customer_key, contacts.*
    from customers
    join identifiers on identifiers.customer_key = customers.customer_key
        and identifiers.identifier_type = 'hubspot_contact'
    join contacts on contacts.contact_id = identifiers.identifier
    order by customers.customer_key, contacts.created_at
),

touch_summary as (
    select
        customer_key,
        min(occurred_at) as first_touch_at,
        max(occurred_at) as last_touch_at,
        (array_agg(channel order by occurred_at, touchpoint_id))[1] as acquisition_channel,
        (array_agg(touchpoint order by occurred_at, touchpoint_id))[1] as first_touchpoint,
        count(*) as touchpoints,
        count(*) filter (where channel = 'web') as web_touchpoints,
        count(*) filter (where channel = 'email') as email_touchpoints,
        count(*) filter (where source = 'crm') as crm_touchpoints,
        count(*) filter (where channel = 'support') as support_touchpoints,
        count(*) filter (where touchpoint = 'purchase') as purchases
    from touchpoints
    group by customer_key
),

by_channel as (
    select customer_key, jsonb_object_agg(channel, n) as touchpoints_by_channel
    from (select customer_key, channel, count(*) as n from touchpoints group by 1, 2) as counted
    group by customer_key
),

engagement as (
    select
        touchpoints.customer_key,
        count(*) filter (where touchpoints.occurred_at > as_of.as_of_at - interval '1 day' * {{ var('health_window_days') }} / 2
                         and touchpoints.source <> 'crm') as recent_engagement,
        count(*) filter (where touchpoints.occurred_at <= as_of.as_of_at - interval '1 day' * {{ var('health_window_days') }} / 2
                         and touchpoints.occurred_at > as_of.as_of_at - interval '1 day' * {{ var('health_window_days') }}
                         and touchpoints.source <> 'crm') as earlier_engagement
    from touchpoints cross join as_of
    group by touchpoints.customer_key
),

satisfaction as (
    select
        customer_key,
        (array_agg(score order by submitted_at desc) filter (where survey_type = 'NPS'))[1] as latest_nps,
        (array_agg(score order by submitted_at desc) filter (where survey_type = 'CSAT'))[1] as latest_csat,
        bool_or(is_dissatisfied and submitted_at > (select as_of_at from as_of) - interval '1 day' * {{ var('health_window_days') }})
            as has_recent_detractor
    from feedback
    group by customer_key
),

service as (
    select
        customer_key,
        count(*) as cases,
        count(*) filter (where created_at > (select as_of_at from as_of) - interval '1 day' * {{ var('health_window_days') }}) as recent_cases,
        count(*) filter (where is_repeat) as repeat_cases
    from cases
    group by customer_key
),

consent as (
    -- the latest signal wins: HubSpot opt-out, SendGrid unsubscribe / resubscribe
    select customer_key, (array_agg(opted_out order by signal_at desc))[1] as email_opted_out,
           (array_agg(signal_source order by signal_at desc))[1] as email_consent_source
    from (
        select i.customer_key, c.is_email_opted_out as opted_out, c.modified_at as signal_at, 'hubspot' as signal_source
        from contacts as c join identifiers as i on i.identifier_type = 'hubspot_contact' and i.identifier = c.contact_id
        union all
        select i.customer_key, e.event_type in ('unsubscribe', 'group_unsubscribe'), e.occurred_at, 'sendgrid'
        from email_events as e join identifiers as i on i.identifier_type = 'email' and i.identifier = e.email
        where e.event_type in ('unsubscribe', 'group_unsubscribe', 'group_resubscribe')
    ) as signals
    group by customer_key
),

web_consent as (
    select customer_key,
           (array_agg(consent_analytics order by occurred_at desc) filter (where consent_analytics is not null))[1] as consent_analytics,
           (array_agg(consent_marketing order by occurred_at desc) filter (where consent_marketing is not null))[1] as consent_marketing
    from (
        select w.customer_key, e.occurred_at, e.consent_analytics, e.consent_marketing
        from segment_events as e
        join identified_web as w on w.message_id = e.message_id
        where e.consent_analytics is not null or e.consent_marketing is not null
    ) as consented
    where customer_key is not null
    group by customer_key
),

final as (
    select
        customers.customer_key,
        customers.email,
        customers.hubspot_contact_id,
        customers.identifiers,
        customers.emails,
        customers.devices,
        customers.first_seen_at,
        touch_summary.first_touch_at,
        touch_summary.last_touch_at,
        touch_summary.acquisition_channel,
        touch_summary.first_touchpoint,
        case
            when coalesce(touch_summary.purchases, 0) > 1 then 'repeat_customer'
            when coalesce(touch_summary.purchases, 0) = 1 then 'customer'
            when contact_of_customer.contact_id is not null then 'lead'
            else 'visitor'
        end as lifecycle_stage,
        contact_of_customer.lifecycle_stage as hubspot_lifecycle_stage,
        contact_of_customer.country,
        coalesce(regions.region, 'Unknown') as region,
        nullif(trim(concat_ws(' ', contact_of_customer.first_name, contact_of_customer.last_name)), '') as display_name,
        companies.company_name,
        coalesce(consent.email_opted_out, false) as email_opted_out,
        consent.email_consent_source,
        web_consent.consent_analytics,
        web_consent.consent_marketing,
        -- reports may name this customer only when nothing says no
        not coalesce(consent.email_opted_out, false) and coalesce(web_consent.consent_marketing, true)
            as may_be_named,
        coalesce(touch_summary.touchpoints, 0) as touchpoints,
        coalesce(touch_summary.web_touchpoints, 0) as web_touchpoints,
        coalesce(touch_summary.email_touchpoints, 0) as email_touchpoints,
        coalesce(touch_summary.crm_touchpoints, 0) as crm_touchpoints,
        coalesce(touch_summary.support_touchpoints, 0) as support_touchpoints,
        coalesce(touch_summary.purchases, 0) as purchases,
        coalesce(by_channel.touchpoints_by_channel, '{}'::jsonb) as touchpoints_by_channel,
        satisfaction.latest_nps,
        satisfaction.latest_csat,
        coalesce(service.cases, 0) as support_cases,
        coalesce(service.repeat_cases, 0) as repeat_support_cases,
        coalesce(service.recent_cases, 0) as recent_support_cases,
        coalesce(satisfaction.has_recent_detractor, false) as has_recent_detractor,
        coalesce(engagement.recent_engagement, 0) as recent_engagement,
        coalesce(engagement.earlier_engagement, 0) as earlier_engagement,
        (coalesce(satisfaction.has_recent_detractor, false) or coalesce(service.recent_cases, 0) >= 2)
            and coalesce(engagement.recent_engagement, 0) < coalesce(engagement.earlier_engagement, 0)
            as is_at_risk,
        case
            when (coalesce(satisfaction.has_recent_detractor, false) or coalesce(service.recent_cases, 0) >= 2)
                 and coalesce(engagement.recent_engagement, 0) < coalesce(engagement.earlier_engagement, 0) then 'at_risk'
            when coalesce(engagement.recent_engagement, 0) = 0 and coalesce(engagement.earlier_engagement, 0) = 0 then 'inactive'
            else 'healthy'
        end as health
    from customers
    left join touch_summary using (customer_key)
    left join by_channel using (customer_key)
    left join contact_of_customer using (customer_key)
    left join satisfaction using (customer_key)
    left join service using (customer_key)
    left join engagement using (customer_key)
    left join consent using (customer_key)
    left join web_consent using (customer_key)
    left join regions on regions.country = upper(contact_of_customer.country)
    left join companies on companies.company_id = contact_of_customer.company_id
)

select * from final
