{{ config(
    materialized='incremental',
    unique_key='journey_stage',
    incremental_strategy='replace',
    replace_key='week_start',
    on_schema_change='ignore',
    indexes=[{'columns': ['week_start', 'region', 'business_unit', 'journey_stage'], 'unique': True}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
/* depends_on: {{ ref('int_events_classified') }} {{ ref('int_customers_located') }} {{ ref('fct_touchpoints') }} */
{#- The journey funnel: customers entering each stage per week, region and business unit.
    Method, grain and incremental logic: its docs block in _journeys__docs.md. -#}
with
{%- if is_incremental() %}
changed_weeks as (
    {{ affected_weeks() }}
),

recomputed_weeks as materialized (
    select week_start from changed_weeks
    union
    select week_start + 7 from changed_weeks
),
{%- endif %}

entries as (
    select
        j.customer_key,
        j.journey_stage,
        date_trunc('week', j.entered_at at time zone 'UTC')::date as week_start,
        coalesce(c.region, 'Unknown') as region,
        coalesce(u.business_unit, 'other') as business_unit
    from {{ ref('fct_journeys') }} as j
    left join {{ ref('dim_customers') }} as c on c.customer_key = j.customer_key
    left join {{ ref('business_units') }} as u on u.channel = j.entry_channel
    where true {{ in_weeks('j.entered_at') }}
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
    -- every stage of every slice with an entry: the distinct slices first, then the stages
    select slices.week_start, slices.region, slices.business_unit, stages.stage_order, stages.journey_stage
    from (select distinct week_start, region, business_unit from sliced) as slices
    cross join stages
),

counted as (
    select week_start, region, business_unit, journey_stage, count(distinct customer_key) as customers_entered
    from sliced
    group by 1, 2, 3, 4
),

previous_weeks as (
    -- the week before each recomputed one: recomputed too, or as stored (a stored 0 is a
    -- stage nobody entered: no count)
    select week_start, region, business_unit, journey_stage, customers_entered from counted
    {%- if is_incremental() %}
    union all
    select week_start, region, business_unit, journey_stage, nullif(customers_entered, 0)
    from {{ this }}
    where week_start in (select week_start - 7 from recomputed_weeks)
      and week_start not in (select week_start from recomputed_weeks)
    {%- endif %}
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
    left join previous_weeks as previous
        on previous.week_start = grid.week_start - 7 and previous.region = grid.region
        and previous.business_unit = grid.business_unit and previous.journey_stage = grid.journey_stage
)

{% if is_incremental() %}
{{ replace_rows('final', 'recomputed_weeks', 'recomputed_weeks.week_start') }}
{% else %}
select * from final
{% endif %}
