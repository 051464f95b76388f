{{ config(
    materialized='incremental',
    unique_key='touchpoint_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['touchpoint_id'], 'unique': True},
        {'columns': ['occurred_at']},
        {'columns': ['customer_key', 'occurred_at']},
    ],
) }}
{#- Incremental: a run re-writes the touchpoints of the last var('incremental_lookback_days')
    before the newest row it holds (late arrivals), plus any older touchpoint whose customer or
    stage changed since (an identity merge re-keys the past). The result equals a full refresh. -#}
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
{% if is_incremental() %}
where final.occurred_at >= (
        select coalesce(max(occurred_at), '-infinity'::timestamptz)
               - interval '1 day' * {{ var('incremental_lookback_days') }}
        from {{ this }}
    )
    or not exists (
        select 1 from {{ this }} as existing
        where existing.touchpoint_id = final.touchpoint_id
          and existing.customer_key is not distinct from final.customer_key
          and existing.journey_stage = final.journey_stage
    )
{% endif %}
