{{ config(indexes=[{'columns': ['week_start', 'region'], 'unique': True}]) }}
{#- How the relationship with the customer base stands, week by week: the shares of healthy
    and at-risk customers, and of promoters and detractors among those who answered NPS lately.
    Method and grain: its docs block in _customers__docs.md. -#}
{%- set window_days = var('health_window_days') -%}
with health as (
    select h.customer_key, h.week_start, h.is_at_risk, coalesce(c.region, 'Unknown') as region
    from {{ ref('fct_customer_health_weekly') }} as h
    join {{ ref('dim_customers') }} as c using (customer_key)
),

answers as (
    select customer_key, submitted_at, nps_group
    from {{ ref('fct_feedback') }}
    where survey_type = 'NPS' and nps_group is not null and customer_key is not null
),

answer_weeks as (
    -- an answer speaks for the weeks whose end falls within health_window_days after it
    select a.customer_key, a.submitted_at, a.nps_group,
           ({{ week_of('a.submitted_at') }} + 7 * shift)::date as week_start
    from answers as a
    cross join generate_series(0, {{ (window_days / 7) | round(0, 'ceil') | int }}) as shift
),

latest_answers as (
    -- each customer's latest answer in the window ending with the week
    select distinct on (customer_key, week_start) customer_key, week_start, nps_group
    from answer_weeks
    where submitted_at >= (week_start + 7)::timestamp at time zone 'UTC' - interval '1 day' * {{ window_days }}
    order by customer_key, week_start, submitted_at desc
),

customer_weeks as (
    select h.week_start, h.region, h.is_at_risk, l.nps_group
    from health as h
    left join latest_answers as l using (customer_key, week_start)
),

sliced as (
    select c.*, regions.region_slice
    from customer_weeks as c
    cross join lateral (values ('(all)'), (c.region)) as regions (region_slice)
),

counted as (
    select
        week_start,
        region_slice as region,
        count(*) as customers,
        count(*) filter (where is_at_risk) as at_risk_customers,
        count(*) filter (where not is_at_risk) as healthy_customers,
        count(nps_group) as answered_customers,
        count(*) filter (where nps_group = 'promoter') as promoters,
        count(*) filter (where nps_group = 'passive') as passives,
        count(*) filter (where nps_group = 'detractor') as detractors
    from sliced
    group by 1, 2
),

final as (
    select
        counted.*,
        healthy_customers::numeric / nullif(customers, 0) as healthy_share,
        at_risk_customers::numeric / nullif(customers, 0) as at_risk_share,
        promoters::numeric / nullif(answered_customers, 0) as promoter_share,
        detractors::numeric / nullif(answered_customers, 0) as detractor_share
    from counted
)

select * from final
