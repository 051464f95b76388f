{#- The weekly report's numbers: touchpoints and distinct customers per ISO week (Monday,
    UTC), for the whole week, per channel, and per channel and touchpoint. -#}
with touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

weekly as (
    select
        date_trunc('week', occurred_at at time zone 'UTC')::date as week_start,
        channel,
        touchpoint,
        grouping(channel, touchpoint) as grouping_id,
        count(*) as touchpoints,
        count(distinct customer_key) as customers,
        count(*) filter (where customer_key is null) as anonymous_touchpoints
    from touchpoints
    group by grouping sets (
        (date_trunc('week', occurred_at at time zone 'UTC')::date),
        (date_trunc('week', occurred_at at time zone 'UTC')::date, channel),
        (date_trunc('week', occurred_at at time zone 'UTC')::date, channel, touchpoint)
    )
),

final as (
    select
        week_start,
        case grouping_id when 3 then 'week' when 1 then 'channel' else 'touchpoint' end as grain,
        coalesce(channel, '(all)') as channel,
        coalesce(touchpoint, '(all)') as touchpoint,
        touchpoints,
        customers,
        anonymous_touchpoints
    from weekly
)

select * from final
