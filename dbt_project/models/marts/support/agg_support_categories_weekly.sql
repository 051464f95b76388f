{#- Cases per category and ISO week (Monday, UTC), for every region together ('(all)') and each
    region: how many, how fast they were answered and solved against the weeks before, what is
    left open, and whether the category recurs.
    Method and grain: its docs block in _support__docs.md. -#}
{%- set window = var('signal_baseline_weeks') -%}
with cases as (
    select
        cases.*,
        date_trunc('week', cases.created_at at time zone 'UTC')::date as week_start,
        coalesce(customers.region, 'Unknown') as customer_region
    from {{ ref('fct_support_cases') }} as cases
    left join {{ ref('dim_customers') }} as customers on customers.customer_key = cases.customer_key
),

sliced as (
    select cases.*, regions.region
    from cases
    cross join lateral (values ('(all)'), (cases.customer_region)) as regions (region)
),

weekly as (
    select
        week_start,
        region,
        category,
        count(*) as cases,
        count(*) filter (where is_repeat) as repeat_cases,
        count(distinct customer_key) as customers,
        count(*) filter (where is_reopened) as reopened_cases,
        avg(resolution_hours) as avg_resolution_hours,
        percentile_cont(0.5) within group (order by first_response_hours) as first_response_median_hours,
        percentile_cont(0.9) within group (order by first_response_hours) as first_response_p90_hours,
        percentile_cont(0.5) within group (order by resolution_hours) as resolution_median_hours,
        percentile_cont(0.9) within group (order by resolution_hours) as resolution_p90_hours
    from sliced
    group by 1, 2, 3
),

weeks as (
    select distinct week_start from weekly
),

trailing_times as (
    -- the same percentiles over the cases of the weeks before (pooled, not a median of medians)
    select
        w.week_start,
        s.region,
        s.category,
        percentile_cont(0.5) within group (order by s.first_response_hours) as previous_first_response_median_hours,
        percentile_cont(0.9) within group (order by s.first_response_hours) as previous_first_response_p90_hours,
        percentile_cont(0.5) within group (order by s.resolution_hours) as previous_resolution_median_hours,
        percentile_cont(0.9) within group (order by s.resolution_hours) as previous_resolution_p90_hours
    from weeks as w
    join sliced as s on s.week_start >= w.week_start - 7 * {{ window }} and s.week_start < w.week_start
    group by 1, 2, 3
),

backlog as (
    -- cases open at the week's end: opened before it, not closed by then
    select w.week_start, s.region, s.category, count(*) as open_cases
    from weeks as w
    join sliced as s
        on s.created_at < (w.week_start + 7)::timestamp at time zone 'UTC'
        and (s.closed_at is null or s.closed_at >= (w.week_start + 7)::timestamp at time zone 'UTC')
    group by 1, 2, 3
),

grid as (
    select weeks.week_start, keys.region, keys.category
    from weeks cross join (select distinct region, category from weekly) as keys
),

filled as (
    select
        grid.week_start, grid.region, grid.category,
        coalesce(weekly.cases, 0) as cases,
        coalesce(weekly.repeat_cases, 0) as repeat_cases,
        coalesce(weekly.customers, 0) as customers,
        coalesce(weekly.reopened_cases, 0) as reopened_cases,
        weekly.avg_resolution_hours,
        weekly.first_response_median_hours,
        weekly.first_response_p90_hours,
        weekly.resolution_median_hours,
        weekly.resolution_p90_hours,
        t.previous_first_response_median_hours,
        t.previous_first_response_p90_hours,
        t.previous_resolution_median_hours,
        t.previous_resolution_p90_hours,
        coalesce(b.open_cases, 0) as open_cases
    from grid
    left join weekly using (week_start, region, category)
    left join trailing_times as t using (week_start, region, category)
    left join backlog as b using (week_start, region, category)
),

windowed as (
    select
        filled.*,
        coalesce(lag(cases) over by_category, 0) as previous_week_cases,
        cases - coalesce(lag(cases) over by_category, 0) as change_in_cases,
        cases > coalesce(lag(cases) over by_category, 0) as is_rising,
        coalesce(sum(cases) over previous_weeks, 0) as cases_previous_4_weeks,
        coalesce(count(*) filter (where cases > 0) over previous_weeks, 0) as weeks_with_cases_of_previous_4,
        -- the recurring rule's window: this week and the signal_baseline_weeks - 1 before it
        sum(cases) over recent_weeks as recent_cases,
        sum(repeat_cases) over recent_weeks as recent_repeat_cases
    from filled
    window
        by_category as (partition by region, category order by week_start),
        previous_weeks as (partition by region, category order by week_start rows between 4 preceding and 1 preceding),
        recent_weeks as (partition by region, category order by week_start rows between {{ window - 1 }} preceding and current row)
),

final as (
    select
        windowed.*,
        recent_repeat_cases::numeric / nullif(recent_cases, 0) as recent_repeat_share,
        reopened_cases::numeric / nullif(cases, 0) as reopen_rate,
        -- a category recurs when the same customers come back with it: enough repeat cases,
        -- and a share of its cases no one-off category reaches by chance
        recent_repeat_cases >= {{ var('recurring_min_repeat_cases') }}
            and recent_repeat_cases >= {{ var('recurring_min_repeat_share') }} * recent_cases as is_recurring
    from windowed
)

select * from final
