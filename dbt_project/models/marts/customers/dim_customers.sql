/* depends_on: {{ ref('int_events_classified') }} */
/* depends_on: {{ ref('stg_hubspot__feedback_submissions') }} */
/* depends_on: {{ ref('stg_hubspot__tickets') }} */
/* depends_on: {{ ref('dim_customer_consents') }} */
/* depends_on: {{ ref('fct_customer_health_weekly') }} */
/* depends_on: {{ ref('stg_hubspot__companies') }} */
{{ config(
    materialized='incremental',
    unique_key='customer_key',
    incremental_strategy='replace',
    replace_key='customer_key',
    on_schema_change='ignore',
    indexes=[{'columns': ['customer_key'], 'unique': True}],
    post_hook=[
        "{{ analyze_if_rebuilt() }}",
        "{{ save_watermark(as_of='(select coalesce(max(occurred_at), now()) from ' ~ ref('fct_touchpoints') ~ ')') }}",
    ],
) }}
{%- set half_window = "interval '1 day' * " ~ var('health_window_days') ~ " / 2" -%}
{%- set window = "interval '1 day' * " ~ var('health_window_days') -%}
{#- The customer 360: one row per resolved customer, health judged as of the newest touchpoint.
    Method, grain and incremental logic: its docs block in _customers__docs.md. -#}
{#- The import CTEs are not materialized: on an incremental run each one is a handful of
    index lookups, and joining them as materialized sets would be nested loops over sets the
    planner takes for one row. -#}
{#- The at-risk verdict is the weekly one (fct_customer_health_weekly, built by the weekly
    report's run): the newest judged week's. Before the first weekly run there is none. -#}
{%- set weekly_health = load_relation(ref('fct_customer_health_weekly')) if execute else none -%}
{%- if is_incremental() and execute -%}
    {#- where the health windows' boundaries were at the last run and are now, as literals so
        the boundary slices are index range scans -#}
    {%- set saved = saved_as_of() -%}
    {%- set now_as_of = "'" ~ run_query("select coalesce(max(occurred_at), now())::text from " ~ ref('fct_touchpoints')).rows[0][0] ~ "'::timestamptz" -%}
    {%- set can_rejudge = '-infinity' not in saved -%}
    {%- set low = 'least(' ~ saved ~ ', ' ~ now_as_of ~ ')' -%}
    {%- set high = 'greatest(' ~ saved ~ ', ' ~ now_as_of ~ ')' -%}
    {#- the way the windows moved: +1 forward (the usual), -1 back (the newest touchpoint went) -#}
    {%- set direction = 'sign(extract(epoch from ' ~ now_as_of ~ ' - ' ~ saved ~ '))::int' if can_rejudge else '1' -%}
{%- endif %}
with
verdicts as (
    -- the newest week's verdict per customer judged then (one rule: fct_customer_health_weekly)
    {%- if weekly_health is not none %}
    select customer_key, week_start, is_at_risk, at_risk_reason
    from {{ weekly_health }}
    where week_start = (select max(week_start) from {{ weekly_health }})
    {%- else %}
    select null::text as customer_key, null::date as week_start, null::boolean as is_at_risk,
           null::text as at_risk_reason
    where false
    {%- endif %}
),
{%- if is_incremental() %}
changed_rows as (
    -- customers whose own data changed: their rows are re-derived whole
    select customer_key from ({{ changed_customers() }}) as changed
    union
    {{ remapped_customers() }}
    union
    -- contacts (and their companies) re-staged, answers and cases re-staged: their customers
    select i.customer_key
    from {{ ref('int_identifiers_mapped') }} as i
    where i.identifier_type = 'hubspot_contact'
      and i.identifier in (
          select contact_id from {{ ref('stg_hubspot__contacts') }} where _loaded_at > {{ watermark() }}
          union
          select contact_id from {{ ref('stg_hubspot__contacts') }}
          where company_id in (
              select company_id from {{ ref('stg_hubspot__companies') }} where _loaded_at > {{ watermark() }}
          )
          union
          select contact_id from {{ ref('stg_hubspot__feedback_submissions') }} where _loaded_at > {{ watermark() }}
          union
          select contact_id from {{ ref('stg_hubspot__tickets') }} where _loaded_at > {{ watermark() }}
      )
    union
    -- consent: a state, its source or its time differs from the stored row's
    select stored.customer_key
    from {{ this }} as stored
    join {{ ref('dim_customer_consents') }} as analytics
        on analytics.customer_key = stored.customer_key and analytics.purpose = 'analytics'
    join {{ ref('dim_customer_consents') }} as marketing
        on marketing.customer_key = stored.customer_key and marketing.purpose = 'marketing'
    where (stored.analytics_consent, stored.analytics_consent_source, stored.analytics_consent_at)
              is distinct from (analytics.consent_state, analytics.decided_by_source, analytics.decided_at)
       or (stored.marketing_consent, stored.marketing_consent_source, stored.marketing_consent_at)
              is distinct from (marketing.consent_state, marketing.decided_by_source, marketing.decided_at)
),

window_shifts as (
    -- non-CRM touchpoints between where a window boundary was and where it is now
    select
        customer_key,
        count(*) filter (where occurred_at > {{ low }} - {{ half_window }} and occurred_at <= {{ high }} - {{ half_window }})
            as crossed_half_window,
        count(*) filter (where occurred_at > {{ low }} - {{ window }} and occurred_at <= {{ high }} - {{ window }})
            as crossed_window
    from {{ ref('fct_touchpoints') }}
    where source <> 'crm' and customer_key is not null
      and ((occurred_at > {{ low }} - {{ half_window }} and occurred_at <= {{ high }} - {{ half_window }})
           or (occurred_at > {{ low }} - {{ window }} and occurred_at <= {{ high }} - {{ window }}))
    group by customer_key
),

window_moved as (
    -- customers whose windowed figures may have changed with the as-of time
    select customer_key from window_shifts
    union
    select customer_key from {{ ref('fct_feedback') }}
    where submitted_at > {{ low }} - {{ window }} and submitted_at <= {{ high }} - {{ window }}
      and customer_key is not null
    union
    select customer_key from {{ ref('fct_support_cases') }}
    where created_at > {{ low }} - {{ window }} and created_at <= {{ high }} - {{ window }}
      and customer_key is not null
    union
    -- a new weekly verdict (a new week judged, or a week judged again)
    select stored.customer_key
    from {{ this }} as stored
    left join verdicts using (customer_key)
    where (stored.at_risk_week_start, stored.is_at_risk, stored.at_risk_reason)
          is distinct from (verdicts.week_start, verdicts.is_at_risk, verdicts.at_risk_reason)
),

{%- if can_rejudge %}
rebuilt as (
    select customer_key from changed_rows
),

rejudged as (
    -- only their windows moved: the stored row, re-judged (see rejudged_rows)
    select customer_key from window_moved
    where not exists (select from changed_rows where changed_rows.customer_key = window_moved.customer_key)
),
{%- else %}
rebuilt as (
    -- no as-of saved: nothing to re-judge from, everyone affected is re-derived
    select customer_key from changed_rows
    union
    select customer_key from window_moved
),
{%- endif %}

affected as (
    select customer_key from rebuilt
    {%- if can_rejudge %}
    union all
    select customer_key from rejudged
    {%- endif %}
),
{%- endif %}

identifiers as not materialized (
    select * from {{ ref('int_identifiers_mapped') }}
    where customer_key is not null
    {%- if is_incremental() %} and customer_key in (select customer_key from rebuilt){% endif %}
),

touchpoints as not materialized (
    select * from {{ ref('fct_touchpoints') }}
    where customer_key is not null
    {%- if is_incremental() %} and customer_key in (select customer_key from rebuilt){% endif %}
),

contacts as not materialized (
    select * from {{ ref('stg_hubspot__contacts') }}
    {%- if is_incremental() %}
    where contact_id in (select identifier from identifiers where identifier_type = 'hubspot_contact')
    {%- endif %}
),

consents as not materialized (
    select * from {{ ref('dim_customer_consents') }}
    {%- if is_incremental() %}
    where customer_key in (select customer_key from rebuilt)
    {%- endif %}
),

feedback as not materialized (
    select * from {{ ref('fct_feedback') }}
    where customer_key is not null
    {%- if is_incremental() %} and customer_key in (select customer_key from rebuilt){% endif %}
),

cases as not materialized (
    select * from {{ ref('fct_support_cases') }}
    where customer_key is not null
    {%- if is_incremental() %} and customer_key in (select customer_key from rebuilt){% endif %}
),

located as not materialized (
    select * from {{ ref('int_customers_located') }}
    {%- if is_incremental() %}
    where customer_key in (select customer_key from rebuilt)
    {%- endif %}
),

as_of as (
    select coalesce(max(occurred_at), now()) as as_of_at from {{ ref('fct_touchpoints') }}
),

customers as (
    select
        customer_key,
        count(*) as identifiers,
        count(*) filter (where identifier_type = 'email') as emails,
        count(*) filter (where identifier_type = 'segment_anonymous') as devices,
        min(first_seen_at) as first_seen_at
    from identifiers
    group by customer_key
),

contact_of_customer as (
    -- the primary contact and its region are chosen in int_customers_located
    select located.customer_key, located.region, contacts.*
    from located
    join contacts on contacts.contact_id = located.contact_id
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
        (array_agg(score order by submitted_at desc, feedback_id desc) filter (where survey_type = 'NPS'))[1] as latest_nps,
        (array_agg(score order by submitted_at desc, feedback_id desc) filter (where survey_type = 'CSAT'))[1] as latest_csat,
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
    -- one column per purpose: the latest signal of any source decided it (dim_customer_consents)
    select
        customers.customer_key,
        analytics.consent_state as analytics_consent,
        analytics.decided_by_source as analytics_consent_source,
        analytics.decided_at as analytics_consent_at,
        marketing.consent_state as marketing_consent,
        marketing.decided_by_source as marketing_consent_source,
        marketing.decided_at as marketing_consent_at
    from customers
    left join consents as analytics
        on analytics.customer_key = customers.customer_key and analytics.purpose = 'analytics'
    left join consents as marketing
        on marketing.customer_key = customers.customer_key and marketing.purpose = 'marketing'
),

final as (
    select
        customers.customer_key,
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
        coalesce(contact_of_customer.region, 'Unknown') as region,
        coalesce(consent.analytics_consent, 'unknown') as analytics_consent,
        consent.analytics_consent_source,
        consent.analytics_consent_at,
        coalesce(consent.marketing_consent, 'unknown') as marketing_consent,
        consent.marketing_consent_source,
        consent.marketing_consent_at,
        -- reports may name this customer unless they refused either purpose (README, privacy)
        coalesce(consent.analytics_consent, 'unknown') <> 'refused'
            and coalesce(consent.marketing_consent, 'unknown') <> 'refused' as may_be_named,
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
        verdicts.week_start as at_risk_week_start,
        verdicts.is_at_risk,
        verdicts.at_risk_reason,
        case
            when verdicts.is_at_risk then 'at_risk'
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
    left join verdicts using (customer_key)
)

{% if is_incremental() and can_rejudge %}
, rejudged_rows as (
    -- the stored row under the new as-of time: touchpoints that crossed a window boundary move
    -- between the recent and the earlier half (or out), answers and cases are re-counted
    select
        stored.customer_key, stored.identifiers, stored.emails,
        stored.devices, stored.first_seen_at, stored.first_touch_at, stored.last_touch_at,
        stored.acquisition_channel, stored.first_touchpoint, stored.lifecycle_stage,
        stored.hubspot_lifecycle_stage, stored.country, stored.region,
        stored.analytics_consent, stored.analytics_consent_source,
        stored.analytics_consent_at, stored.marketing_consent, stored.marketing_consent_source,
        stored.marketing_consent_at, stored.may_be_named, stored.touchpoints, stored.web_touchpoints,
        stored.email_touchpoints, stored.crm_touchpoints, stored.support_touchpoints, stored.purchases,
        stored.touchpoints_by_channel, stored.latest_nps, stored.latest_csat, stored.support_cases,
        stored.repeat_support_cases,
        judged.recent_support_cases,
        judged.has_recent_detractor,
        judged.recent_engagement,
        judged.earlier_engagement,
        verdicts.week_start as at_risk_week_start,
        verdicts.is_at_risk,
        verdicts.at_risk_reason,
        case
            when verdicts.is_at_risk then 'at_risk'
            when judged.recent_engagement = 0 and judged.earlier_engagement = 0 then 'inactive'
            else 'healthy'
        end as health
    from {{ this }} as stored
    join rejudged using (customer_key)
    left join verdicts using (customer_key)
    left join window_shifts as shifts using (customer_key)
    cross join lateral (
        select
            stored.recent_engagement - {{ direction }} * coalesce(shifts.crossed_half_window, 0) as recent_engagement,
            stored.earlier_engagement
                + {{ direction }} * (coalesce(shifts.crossed_half_window, 0) - coalesce(shifts.crossed_window, 0))
                as earlier_engagement,
            (select count(*) from {{ ref('fct_support_cases') }} as c
             where c.customer_key = stored.customer_key and c.created_at > {{ now_as_of }} - {{ window }})
                as recent_support_cases,
            coalesce((select bool_or(f.is_dissatisfied and f.submitted_at > {{ now_as_of }} - {{ window }})
                      from {{ ref('fct_feedback') }} as f where f.customer_key = stored.customer_key), false)
                as has_recent_detractor
    ) as judged
),

judged_rows as (
    select * from final
    union all
    select * from rejudged_rows
)

{{ replace_rows('judged_rows', 'affected', 'affected.customer_key') }}
{% elif is_incremental() %}
{{ replace_rows('final', 'affected', 'affected.customer_key') }}
{% else %}
select * from final
{% endif %}
