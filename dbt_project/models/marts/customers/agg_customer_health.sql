{#- How many customers are in each health state (dim_customers.health, judged as of the newest
    touchpoint), for every region together ('(all)') and each region; named_at_risk counts the
    at-risk customers a report may name (consent allows it). -#}
with customers as (
    select * from {{ ref('dim_customers') }}
),

sliced as (
    select customers.*, regions.region_slice
    from customers
    cross join lateral (values ('(all)'), (customers.region)) as regions (region_slice)
),

final as (
    select
        region_slice as region,
        health,
        count(*) as customers,
        count(*) filter (where may_be_named) as may_be_named,
        max(last_touch_at) as newest_touch_at
    from sliced
    group by 1, 2
)

select * from final
