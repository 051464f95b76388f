{#- the unique index proves the grain's test (macros/tests.sql) at the cost of one sort -#}
{{ config(
    materialized='table',
    indexes=[{'columns': ['week_start', 'grain', 'key', 'metric', 'unit_id'], 'unique': True}],
) }}
{#- The units (answers, reached and cohort customers) behind the customer-level weekly
    signals, one row per week, key, metric and unit.
    Method and grain: its docs block in _int_signals__docs.md. -#}
{%- set lookback = "interval '1 day' * " ~ var('feedback_lookback_days') -%}
{%- set attribution = "interval '1 day' * " ~ var('attribution_lookback_days') -%}
with touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

feedback as (
    select * from {{ ref('fct_feedback') }}
),

feedback_touchpoints as (
    select * from {{ ref('fct_feedback_touchpoints') }}
),

conversions as (
    select * from {{ ref('fct_conversions') }}
),

located as (
    select customer_key, region from {{ ref('int_customers_located') }}
),

known_touches as (
    select
        t.customer_key,
        t.occurred_at,
        {{ week_of('t.occurred_at') }} as week_start,
        t.channel,
        t.touchpoint,
        t.journey_stage,
        t.direction = 'inbound' and t.source <> 'crm' as is_engagement
    from touchpoints as t
    where t.customer_key is not null
),

-- satisfaction: each answer once per key it followed -----------------------------------------
answers as (
    select
        f.feedback_id,
        f.customer_key,
        {{ week_of('f.submitted_at') }} as week_start,
        case when f.survey_type = 'CSAT' then 'csat' else 'nps' end as metric,
        case
            when f.survey_type = 'CSAT' then f.score::numeric
            when f.score >= 9 then 100
            when f.score >= 7 then 0
            else -100
        end as unit_value
    from feedback as f
    where f.customer_key is not null and f.score is not null and f.survey_type in ('CSAT', 'NPS')
),

answer_keys as (
    select distinct a.feedback_id, 'touchpoint' as grain, ft.touchpoint as key
    from answers as a
    join feedback_touchpoints as ft on ft.feedback_id = a.feedback_id
    union
    select distinct a.feedback_id, 'channel', ft.channel
    from answers as a
    join feedback_touchpoints as ft on ft.feedback_id = a.feedback_id
),

satisfaction_units as (
    select a.week_start, a.feedback_id::text as unit_id, a.customer_key, k.grain, k.key, a.metric, a.unit_value
    from answers as a
    join answer_keys as k on k.feedback_id = a.feedback_id
),

-- conversion: customers reached in the trailing weeks, and those of them converting -----------
reach_touches as (
    select distinct customer_key, week_start, grain, key
    from known_touches
    cross join lateral (values ('touchpoint', touchpoint), ('channel', channel)) as keys (grain, key)
    where journey_stage in ('awareness', 'consideration')
),

reached as (
    -- a touch in week w reaches its customer in weeks w .. w + signal_reach_weeks - 1
    select distinct r.customer_key, r.grain, r.key, (r.week_start + 7 * shift)::date as week_start
    from reach_touches as r
    cross join generate_series(0, {{ var('signal_reach_weeks') }} - 1) as shift
    where r.week_start + 7 * shift <= (select max(week_start) from known_touches)
),

converted as (
    select distinct c.customer_key, {{ week_of('c.converted_at') }} as week_start, keys.grain, keys.key
    from conversions as c
    join known_touches as t
        on t.customer_key = c.customer_key
        and t.occurred_at < c.converted_at
        and t.occurred_at >= c.converted_at - {{ attribution }}
        and t.journey_stage in ('awareness', 'consideration')
    cross join lateral (values ('touchpoint', t.touchpoint), ('channel', t.channel)) as keys (grain, key)
),

conversion_units as (
    select
        r.week_start, r.customer_key::text as unit_id, r.customer_key, r.grain, r.key, 'conversion_rate' as metric,
        case when c.customer_key is not null then 1 else 0 end::numeric as unit_value
    from reached as r
    left join converted as c
        on c.customer_key = r.customer_key and c.week_start = r.week_start
        and c.grain = r.grain and c.key = r.key
),

-- engagement: the cohort that met the key in the weeks before, and its inbound touches -------
met as (
    select distinct customer_key, week_start, grain, key
    from known_touches
    cross join lateral (values ('touchpoint', touchpoint), ('channel', channel)) as keys (grain, key)
),

cohorts as (
    -- met in week w: in the cohort of weeks w + 1 .. w + signal_cohort_weeks
    select distinct m.customer_key, m.grain, m.key, (m.week_start + 7 * shift)::date as week_start
    from met as m
    cross join generate_series(1, {{ var('signal_cohort_weeks') }}) as shift
    where m.week_start + 7 * shift <= (select max(week_start) from known_touches)
),

customer_weeks as (
    select customer_key, week_start, count(*) filter (where is_engagement) as inbound_touchpoints
    from known_touches
    group by customer_key, week_start
),

engagement_units as (
    select
        c.week_start, c.customer_key::text as unit_id, c.customer_key, c.grain, c.key, 'engagement' as metric,
        coalesce(w.inbound_touchpoints, 0)::numeric as unit_value
    from cohorts as c
    left join customer_weeks as w on w.customer_key = c.customer_key and w.week_start = c.week_start
),

customer_units as (
    select * from satisfaction_units
    union all
    select * from conversion_units
    union all
    select * from engagement_units
),

final as (
    select
        u.week_start,
        u.grain,
        u.key,
        u.metric,
        u.unit_id,
        u.customer_key,
        coalesce(l.region, 'Unknown') as region,
        u.unit_value
    from customer_units as u
    left join located as l on l.customer_key = u.customer_key
)

select * from final
