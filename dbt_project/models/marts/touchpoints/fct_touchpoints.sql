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
{#- One row per touchpoint, with its journey stage resolved.
    Method, grain and incremental logic: its docs block in _touchpoints__docs.md. -#}
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
