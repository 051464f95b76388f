{{ config(materialized='table') }}
{#- The raw material of the weekly signals (agg_touchpoint_signals): per ISO week (Monday, UTC),
    region ('(all)' and each region of int_customers_located) and key (a channel, a touchpoint or
    a support case category), the sums behind each metric:
    - sample: how many units the week's value is the mean of (or, for cases, the count);
    - total, total_sq: the sum of the units' values and of their squares (the noise model in
      agg_touchpoint_signals takes the within-week variance from them).
    | metric          | grain               | unit (sample)                                         | value of a unit |
    | csat            | channel, touchpoint | a CSAT answer submitted in the week by a customer who met the key in the feedback_lookback_days before (once per key) | its score 1..5 |
    | nps             | channel, touchpoint | the same for NPS answers                              | +100 (9-10), 0 (7-8), -100 (0-6) |
    | conversion_rate | channel, touchpoint | a customer reached: an awareness or consideration touch of the key in the signal_reach_weeks ending with the week | 1 when they converted in the week with such a touch in the attribution_lookback_days before, else 0 |
    | cases           | category            | a support case opened in the week                     | 1 |
    | engagement      | channel, touchpoint | a cohort customer: met the key (any touch) in the signal_cohort_weeks before the week | their inbound touchpoints of the week outside the CRM |
    Satisfaction is counted in the week the answer was given (not the week of the touch), so a
    week's figures are complete when the week ends and never change after: a report for an
    older week shows what it showed then. Every definition uses data up to the week's end only.

    A touchpoint is one key whatever the channel it came through (the incident grammar names
    touchpoints); its row carries the channel most of its touchpoints came through (its business
    unit is that channel's). A case category's touchpoint is the taxonomy's ticket row for it
    (else customer_support), its channel 'support'. Weeks with nothing to count have no row:
    agg_touchpoint_signals fills the grid. A table (not a view): the mart and the tests read it
    several times. -#}
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

cases as (
    select * from {{ ref('fct_support_cases') }}
),

located as (
    select customer_key, region from {{ ref('int_customers_located') }}
),

units as (
    select channel, business_unit from {{ ref('business_units') }}
),

taxonomy as (
    select * from {{ ref('touchpoint_taxonomy') }}
),

-- the channel each touchpoint mostly comes through (ties: the first name)
primary_channels as (
    select distinct on (touchpoint) touchpoint, channel
    from (
        select touchpoint, channel, count(*) as touches
        from touchpoints
        where customer_key is not null
        group by touchpoint, channel
    ) as counted
    order by touchpoint, touches desc, channel
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
    select a.week_start, a.customer_key, k.grain, k.key, a.metric, a.unit_value
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
        r.week_start, r.customer_key, r.grain, r.key, 'conversion_rate' as metric,
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
        c.week_start, c.customer_key, c.grain, c.key, 'engagement' as metric,
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

customer_sliced as (
    select u.*, regions.region
    from customer_units as u
    left join located as l on l.customer_key = u.customer_key
    cross join lateral (values ('(all)'), (coalesce(l.region, 'Unknown'))) as regions (region)
),

customer_measures as (
    select
        s.week_start,
        s.region,
        s.grain,
        case when s.grain = 'channel' then s.key else p.channel end as channel,
        case when s.grain = 'touchpoint' then s.key end as touchpoint,
        null::text as category,
        s.metric,
        count(*) as sample,
        sum(s.unit_value) as total,
        sum(s.unit_value * s.unit_value) as total_sq
    from customer_sliced as s
    left join primary_channels as p on s.grain = 'touchpoint' and p.touchpoint = s.key
    group by 1, 2, 3, 4, 5, 6, 7
),

-- cases: per category -------------------------------------------------------------------------
category_touchpoints as (
    select event_detail as category, min(touchpoint) as touchpoint
    from taxonomy
    where source = 'crm' and event_type = 'ticket' and event_detail <> '*'
    group by event_detail
),

case_measures as (
    select
        {{ week_of('c.created_at') }} as week_start,
        regions.region,
        'category' as grain,
        'support' as channel,
        coalesce(ct.touchpoint, 'customer_support') as touchpoint,
        coalesce(c.category, 'UNKNOWN') as category,
        'cases' as metric,
        count(*) as sample,
        count(*)::numeric as total,
        count(*)::numeric as total_sq
    from cases as c
    left join located as l on l.customer_key = c.customer_key
    left join category_touchpoints as ct on ct.category = c.category
    cross join lateral (values ('(all)'), (coalesce(l.region, 'Unknown'))) as regions (region)
    group by 1, 2, 3, 4, 5, 6, 7
),

measures as (
    select * from customer_measures
    union all
    select * from case_measures
),

final as (
    select
        m.week_start,
        m.region,
        m.grain,
        m.channel,
        m.touchpoint,
        m.category,
        coalesce(u.business_unit, 'unknown') as business_unit,
        m.metric,
        m.sample,
        m.total,
        m.total_sq
    from measures as m
    left join units as u on u.channel = m.channel
)

select * from final
