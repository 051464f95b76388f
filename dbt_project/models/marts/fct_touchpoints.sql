with events as (
    select * from {{ ref('int_events_classified') }}
),

touchpoints as (
    select * from events where is_touchpoint
),

first_purchases as (
    select customer_key, min(occurred_at) as first_purchase_at
    from touchpoints
    where touchpoint = 'purchase' and customer_key is not null
    group by customer_key
),

final as (
    select
        t.event_key as touchpoint_id,
        t.customer_key,
        t.occurred_at,
        t.channel,
        t.touchpoint,
        t.interaction,
        t.direction,
        case
            when t.journey_stage <> 'by_lifecycle' then t.journey_stage
            when p.first_purchase_at <= t.occurred_at then 'loyalty'
            else 'consideration'
        end as journey_stage,
        t.source,
        t.source_event_id,
        t.event_type as source_event_type
    from touchpoints as t
    left join first_purchases as p on p.customer_key = t.customer_key
)

select * from final
