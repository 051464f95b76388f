/* depends_on: {{ ref('int_events_classified') }} */
{{ config(
    materialized='incremental',
    unique_key='stage_entry_key',
    incremental_strategy='replace',
    replace_key='customer_key',
    replace_from_key='stage_order',
    on_schema_change='ignore',
    indexes=[{'columns': ['stage_entry_key'], 'unique': True}, {'columns': ['customer_key', 'stage_order'], 'unique': True}, {'columns': ['entered_at']}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- Journey stage transitions: one row each time a known customer enters a stage.
    Method, grain and incremental logic: its docs block in _journeys__docs.md. -#}
with
{%- if is_incremental() %}
customers as (
    {{ changed_customers() }}
),

restarts as (
    -- per changed customer: the stay to re-derive from (none: the whole journey)
    select
        customers.customer_key,
        restart.stage_order,
        restart.entered_at,
        restart.entry_touchpoint_id,
        restart.previous_stage
    from customers
    left join lateral (
        select j.stage_order, j.entered_at, j.entry_touchpoint_id, j.previous_stage
        from {{ this }} as j
        where j.customer_key = customers.customer_key
          and j.entered_at < customers.changed_from
        order by j.stage_order desc
        limit 1
    ) as restart on true
),
{%- endif %}

touchpoints as (
    select t.*
    from {{ ref('fct_touchpoints') }} as t
    {%- if is_incremental() %}
    join restarts on restarts.customer_key = t.customer_key
    where restarts.stage_order is null
       or (t.occurred_at, t.touchpoint_id) >= (restarts.entered_at, restarts.entry_touchpoint_id)
    {%- else %}
    where t.customer_key is not null
    {%- endif %}
),

customer_touchpoints as (
    select
        customer_key,
        touchpoint_id,
        occurred_at,
        journey_stage,
        channel,
        touchpoint,
        lag(journey_stage) over (
            partition by customer_key order by occurred_at, touchpoint_id
        ) as previous_touchpoint_stage
    from touchpoints
),

flagged as (
    select
        *,
        previous_touchpoint_stage is null or previous_touchpoint_stage <> journey_stage as is_stage_entry
    from customer_touchpoints
),

numbered as (
    -- each touchpoint carries the number of the stage entry it belongs to
    select
        *,
        count(*) filter (where is_stage_entry) over (
            partition by customer_key order by occurred_at, touchpoint_id rows unbounded preceding
        ) as stage_order
    from flagged
),

stays as (
    select
        customer_key,
        stage_order,
        min(journey_stage) as journey_stage,
        min(occurred_at) as entered_at,
        max(occurred_at) as last_touch_at,
        count(*) as touchpoints_in_stage,
        (array_agg(touchpoint_id order by occurred_at, touchpoint_id))[1] as entry_touchpoint_id,
        (array_agg(touchpoint order by occurred_at, touchpoint_id))[1] as entry_touchpoint,
        (array_agg(channel order by occurred_at, touchpoint_id))[1] as entry_channel
    from numbered
    group by customer_key, stage_order
),

{% if is_incremental() %}
continued as (
    -- a re-derived tail continues the stored journey: its first stay is the restart stay
    select
        stays.customer_key,
        stays.stage_order + coalesce(restarts.stage_order - 1, 0) as stage_order,
        stays.journey_stage,
        stays.entered_at,
        stays.last_touch_at,
        stays.touchpoints_in_stage,
        stays.entry_touchpoint_id,
        stays.entry_touchpoint,
        stays.entry_channel,
        case when stays.stage_order = 1 then restarts.previous_stage end as carried_previous_stage
    from stays
    join restarts using (customer_key)
),
{% else %}
continued as (
    select stays.*, null::text as carried_previous_stage from stays
),
{% endif %}

sequenced as (
    select
        *,
        coalesce(lag(journey_stage) over by_customer, carried_previous_stage) as previous_stage,
        lead(journey_stage) over by_customer as next_stage,
        lead(entered_at) over by_customer as left_at
    from continued
    window by_customer as (partition by customer_key order by stage_order)
),

final as (
    select
        md5(customer_key || ':' || entry_touchpoint_id) as stage_entry_key,
        customer_key,
        stage_order,
        journey_stage,
        previous_stage,
        next_stage,
        entered_at,
        left_at,
        left_at - entered_at as time_in_stage,
        extract(epoch from left_at - entered_at) as seconds_in_stage,
        left_at is null as is_current_stage,
        touchpoints_in_stage,
        last_touch_at,
        entry_touchpoint_id,
        entry_touchpoint,
        entry_channel
    from sequenced
)

{% if is_incremental() %}
{{ replace_rows('final', 'restarts', 'restarts.customer_key', 'restarts.stage_order') }}
{% else %}
select * from final
{% endif %}
