{#- The journey funnel per ISO week (Monday, UTC): how many customers entered each stage that
    week, for every region together ('(all)') and each region, and for every business unit
    together ('(all)') and the unit whose channel brought the customer into the stage. Every
    stage appears every week (0 when nobody entered it), so the funnel always has its shape. -#}
with entries as (
    select
        j.customer_key,
        j.journey_stage,
        date_trunc('week', j.entered_at at time zone 'UTC')::date as week_start,
        coalesce(c.region, 'Unknown') as region,
        coalesce(u.business_unit, 'other') as business_unit
    from {{ ref('fct_journeys') }} as j
    left join {{ ref('dim_customers') }} as c on c.customer_key = j.customer_key
    left join {{ ref('business_units') }} as u on u.channel = j.entry_channel
),

sliced as (
    select entries.customer_key, entries.journey_stage, entries.week_start, regions.region, units.business_unit
    from entries
    cross join lateral (values ('(all)'), (entries.region)) as regions (region)
    cross join lateral (values ('(all)'), (entries.business_unit)) as units (business_unit)
),

stages as (
    select * from (values
        (1, 'awareness'), (2, 'consideration'), (3, 'purchase'),
        (4, 'onboarding'), (5, 'service'), (6, 'loyalty')
    ) as stages (stage_order, journey_stage)
),

grid as (
    select distinct sliced.week_start, sliced.region, sliced.business_unit, stages.stage_order, stages.journey_stage
    from sliced cross join stages
),

counted as (
    select week_start, region, business_unit, journey_stage, count(distinct customer_key) as customers_entered
    from sliced
    group by 1, 2, 3, 4
),

final as (
    select
        grid.week_start,
        grid.region,
        grid.business_unit,
        grid.stage_order,
        grid.journey_stage,
        coalesce(counted.customers_entered, 0) as customers_entered,
        previous.customers_entered as previous_customers_entered
    from grid
    left join counted using (week_start, region, business_unit, journey_stage)
    left join counted as previous
        on previous.week_start = grid.week_start - 7 and previous.region = grid.region
        and previous.business_unit = grid.business_unit and previous.journey_stage = grid.journey_stage
)

select * from final
