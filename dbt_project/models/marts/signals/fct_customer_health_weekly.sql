{{ config(indexes=[{'columns': ['week_start', 'customer_key'], 'unique': True}]) }}
{#- Each customer's health per week, judged as of the week's end: the report's customers at
    risk.
    Method and grain: its docs block in _signals__docs.md. -#}
{%- set k = var('signal_baseline_weeks') -%}
{%- set window = "interval '1 day' * " ~ var('health_window_days') -%}
with touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

feedback as (
    select * from {{ ref('fct_feedback') }}
),

cases as (
    select * from {{ ref('fct_support_cases') }}
),

known as (
    select
        customer_key,
        {{ week_of('occurred_at') }} as week_start,
        direction = 'inbound' and source <> 'crm' as is_engagement
    from touchpoints
    where customer_key is not null
),

bounds as (
    select min(week_start) as first_week, max(week_start) as last_week from known
),

customer_weeks as (
    select customer_key, week_start, count(*) filter (where is_engagement) as inbound_touchpoints
    from known
    group by customer_key, week_start
),

first_weeks as (
    select customer_key, min(week_start) as first_week from customer_weeks group by customer_key
),

dense as (
    -- every week of every customer from their first touchpoint to the warehouse's last week
    select fw.customer_key, fw.first_week, week::date as week_start,
           coalesce(w.inbound_touchpoints, 0) as inbound_touchpoints,
           w.customer_key is not null as has_touchpoint
    from first_weeks as fw
    cross join bounds
    cross join generate_series(fw.first_week, bounds.last_week, interval '7 days') as week
    left join customer_weeks as w on w.customer_key = fw.customer_key and w.week_start = week::date
),

trailing_weeks as (
    select
        dense.*,
        -- the usable trailing weeks: after the customer's first week (its arrival burst is no
        -- baseline) and past the warehouse's warm-up
        array_agg(case when week_start > first_week
                            and week_start >= (select first_week from bounds) + 7 * {{ var('signal_warmup_weeks') }}
                       then inbound_touchpoints end)
            over recent as trailing_touchpoints,
        bool_or(has_touchpoint) over recent_and_this as is_active
    from dense
    window
        recent as (partition by customer_key order by week_start rows between {{ k }} preceding and 1 preceding),
        recent_and_this as (partition by customer_key order by week_start rows between {{ k }} preceding and current row)
),

with_baseline as (
    select
        t.customer_key,
        t.week_start,
        t.inbound_touchpoints,
        b.usable_weeks,
        case when b.usable_weeks >= {{ var('signal_min_baseline_weeks') }} then b.baseline_touchpoints end as baseline_touchpoints
    from trailing_weeks as t
    cross join lateral (
        select count(x) as usable_weeks, percentile_cont(0.5) within group (order by x) as baseline_touchpoints
        from unnest(t.trailing_touchpoints) as x
    ) as b
    where t.is_active
),

recent_detractors as (
    select wb.customer_key, wb.week_start
    from with_baseline as wb
    join feedback as f
        on f.customer_key = wb.customer_key and f.is_dissatisfied
        and f.submitted_at < wb.week_start + 7 and f.submitted_at >= wb.week_start + 7 - {{ window }}
    group by 1, 2
),

recent_cases as (
    select wb.customer_key, wb.week_start, count(*) as recent_cases
    from with_baseline as wb
    join cases as c
        on c.customer_key = wb.customer_key
        and c.created_at < wb.week_start + 7 and c.created_at >= wb.week_start + 7 - {{ window }}
    group by 1, 2
),

judged as (
    select
        wb.*,
        d.customer_key is not null as has_recent_detractor,
        coalesce(c.recent_cases, 0) as recent_cases
    from with_baseline as wb
    left join recent_detractors as d using (customer_key, week_start)
    left join recent_cases as c using (customer_key, week_start)
),

final as (
    select
        customer_key,
        week_start,
        inbound_touchpoints,
        baseline_touchpoints::numeric as baseline_touchpoints,
        has_recent_detractor,
        recent_cases::integer as recent_cases,
        case
            when baseline_touchpoints >= {{ var('at_risk_min_weekly_engagement') }}
                 and inbound_touchpoints <= {{ var('at_risk_engagement_ratio') }} * baseline_touchpoints
                then 'engagement_collapse'
            when (has_recent_detractor or recent_cases >= 2) and inbound_touchpoints < baseline_touchpoints
                then 'dissatisfied'
        end as at_risk_reason
    from judged
)

select
    final.*,
    at_risk_reason is not null as is_at_risk
from final
