{{ config(materialized='table') }}
{#- The sums behind the weekly signals per week, region, key and metric: sample, total,
    total_sq.
    Method and grain: its docs block in _int_signals__docs.md. -#}
with units as (
    select * from {{ ref('int_signal_units_weekly') }}
),

touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

cases as (
    select * from {{ ref('fct_support_cases') }}
),

located as (
    select customer_key, region from {{ ref('int_customers_located') }}
),

business_units as (
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

customer_sliced as (
    select u.week_start, u.grain, u.key, u.metric, u.unit_value, regions.region
    from units as u
    cross join lateral (values ('(all)'), (u.region)) as regions (region)
),

customer_measures as (
    select
        s.week_start,
        s.region,
        s.grain,
        case s.grain when 'channel' then s.key when 'touchpoint' then p.channel end as channel,
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

-- a customer's cases of a category in a week: one cluster (a recurring problem brings 1-3)
case_clusters as (
    select
        {{ week_of('c.created_at') }} as week_start,
        coalesce(c.category, 'UNKNOWN') as category,
        coalesce(l.region, 'Unknown') as region,
        count(*) as cases
    from cases as c
    left join located as l on l.customer_key = c.customer_key
    -- a case without a customer is a cluster of its own
    group by 1, 2, 3, coalesce(c.customer_key::text, c.case_id::text)
),

case_measures as (
    select
        cl.week_start,
        regions.region,
        'category' as grain,
        'support' as channel,
        coalesce(ct.touchpoint, 'customer_support') as touchpoint,
        cl.category,
        'cases' as metric,
        sum(cl.cases) as sample,
        sum(cl.cases)::numeric as total,
        sum(cl.cases * cl.cases)::numeric as total_sq
    from case_clusters as cl
    left join category_touchpoints as ct on ct.category = cl.category
    cross join lateral (values ('(all)'), (cl.region)) as regions (region)
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
        -- the whole base belongs to every unit
        case when m.grain = 'company' then '(all)' else coalesce(u.business_unit, 'unknown') end as business_unit,
        m.metric,
        m.sample,
        m.total,
        m.total_sq
    from measures as m
    left join business_units as u on u.channel = m.channel
)

select * from final
