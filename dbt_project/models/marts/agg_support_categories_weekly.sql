{#- Cases per category and ISO week (Monday, UTC), against the week before: which problems recur and rise. -#}
with cases as (
    select * from {{ ref('fct_support_cases') }}
),

weekly as (
    select
        date_trunc('week', created_at at time zone 'UTC')::date as week_start,
        category,
        count(*) as cases,
        count(*) filter (where is_repeat) as repeat_cases,
        count(distinct customer_key) as customers,
        avg(resolution_hours) as avg_resolution_hours
    from cases
    group by 1, 2
),

weeks as (
    select distinct week_start from weekly
),

grid as (
    select weeks.week_start, categories.category
    from weeks cross join (select distinct category from weekly) as categories
),

filled as (
    select grid.week_start, grid.category, coalesce(weekly.cases, 0) as cases,
           coalesce(weekly.repeat_cases, 0) as repeat_cases, coalesce(weekly.customers, 0) as customers,
           weekly.avg_resolution_hours
    from grid
    left join weekly using (week_start, category)
),

final as (
    select
        filled.*,
        coalesce(lag(cases) over (partition by category order by week_start), 0) as previous_week_cases,
        cases - coalesce(lag(cases) over (partition by category order by week_start), 0) as change_in_cases,
        cases > coalesce(lag(cases) over (partition by category order by week_start), 0) as is_rising
    from filled
)

select * from final
