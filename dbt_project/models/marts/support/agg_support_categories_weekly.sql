{#- Cases per category and ISO week (Monday, UTC), for every region together ('(all)') and each
    region: which problems recur and rise. A category is recurring in a week when it has repeat
    cases (the same customer again within var('recurring_case_window_days')) or cases in at
    least 3 of the 4 weeks before. -#}
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
        avg(resolution_hours) as avg_resolution_hours
    from sliced
    group by 1, 2, 3
),

weeks as (
    select distinct week_start from weekly
),

grid as (
    select weeks.week_start, keys.region, keys.category
    from weeks cross join (select distinct region, category from weekly) as keys
),

filled as (
    select grid.week_start, grid.region, grid.category, coalesce(weekly.cases, 0) as cases,
           coalesce(weekly.repeat_cases, 0) as repeat_cases, coalesce(weekly.customers, 0) as customers,
           weekly.avg_resolution_hours
    from grid
    left join weekly using (week_start, region, category)
),

final as (
    select
        filled.*,
        coalesce(lag(cases) over by_category, 0) as previous_week_cases,
        cases - coalesce(lag(cases) over by_category, 0) as change_in_cases,
        cases > coalesce(lag(cases) over by_category, 0) as is_rising,
        coalesce(sum(cases) over previous_weeks, 0) as cases_previous_4_weeks,
        coalesce(count(*) filter (where cases > 0) over previous_weeks, 0) as weeks_with_cases_of_previous_4,
        repeat_cases > 0 or coalesce(count(*) filter (where cases > 0) over previous_weeks, 0) >= 3 as is_recurring
    from filled
    window
        by_category as (partition by region, category order by week_start),
        previous_weeks as (partition by region, category order by week_start rows between 4 preceding and 1 preceding)
)

select * from final
