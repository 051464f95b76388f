-- A stage entry always changes the stage, entries follow each other in time, and a stage is
-- left exactly when the next one is entered.
with journeys as (
    select
        *,
        lead(entered_at) over (partition by customer_key order by stage_order) as next_entered_at,
        lead(stage_order) over (partition by customer_key order by stage_order) as next_stage_order
    from {{ ref('fct_journeys') }}
    -- in the daily scope, the customers whose stages the build wrote
    where true {{ among_written('customer_key', [(ref('fct_journeys'), 'customer_key')]) }}
)

select *
from journeys
where previous_stage = journey_stage
   or (stage_order = 1) <> (previous_stage is null)
   or left_at is distinct from next_entered_at
   or left_at < entered_at
   or next_stage_order <> stage_order + 1
