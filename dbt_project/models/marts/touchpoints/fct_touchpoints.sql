{{ config(
    materialized='incremental',
    unique_key='touchpoint_id',
    incremental_strategy='replace',
    replace_key='touchpoint_id',
    on_schema_change='ignore',
    indexes=[
        {'columns': ['touchpoint_id'], 'unique': True},
        {'columns': ['occurred_at']},
        {'columns': ['customer_key', 'occurred_at']},
    ],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- One row per touchpoint: the events int_events_classified marks as touchpoints, with the
    journey stage resolved ('by_lifecycle': loyalty from the customer's first purchase on,
    consideration before it).

    Incremental: a touchpoint's row depends on its event and on its customer's first purchase.
    A run replaces the touchpoints of every event changed since the watermark (an event that is
    no longer a touchpoint, or was removed, loses its row; late arrivals are new events,
    whatever their time) and all touchpoints of the customers whose purchases changed (their
    first purchase, hence their stages, may have moved). Every other row is as a full refresh
    would write it. -#}
with
{%- if is_incremental() %}
changed as (
    {{ changed_events() }}
),

purchase_customers as (
    {{ purchase_changed_customers('(select touchpoint_id, customer_key from ' ~ this ~ " where touchpoint = 'purchase')") }}
),

replaced as (
    select event_key as touchpoint_id from changed
    union
    select touchpoint_id from {{ this }}
    where customer_key in (select customer_key from purchase_customers)
),
{%- endif %}

touchpoints as (
    select * from {{ ref('int_events_classified') }}
    where is_touchpoint and not is_removed
    {%- if is_incremental() %}
      and event_key in (select touchpoint_id from replaced)
    {%- endif %}
),

first_purchases as (
    select customer_key, converted_at as first_purchase_at
    from {{ ref('fct_conversions') }}
    where conversion_number = 1
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

{% if is_incremental() %}
{{ replace_rows('final', 'replaced', 'replaced.touchpoint_id') }}
{% else %}
select * from final
{% endif %}
