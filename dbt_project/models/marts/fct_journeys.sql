{#- Journey stage transitions: one row each time a known customer enters a stage. A stage entry
    is a touchpoint whose journey_stage differs from the customer's previous touchpoint's
    (touchpoints ordered by time, then touchpoint_id so ties are deterministic); the first
    touchpoint is the first entry. A stage is left when the next one is entered; the current
    stage has no left_at and no time_in_stage. -#}
with touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
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
    where customer_key is not null
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

sequenced as (
    select
        *,
        lag(journey_stage) over by_customer as previous_stage,
        lead(journey_stage) over by_customer as next_stage,
        lead(entered_at) over by_customer as left_at
    from stays
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

select * from final
