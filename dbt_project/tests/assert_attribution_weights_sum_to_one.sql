-- Every attribution model shares exactly one conversion over a path, and no weight falls
-- outside [0, 1]. Returns the offending (conversion, model) pairs.
-- In the daily scope, the conversions the build credited anew.
with attribution as (
    select * from {{ ref('fct_attribution') }}
    where true {{ among_written('conversion_id', [(ref('fct_attribution'), 'conversion_id')]) }}
),

per_model as (
    select
        conversion_id,
        attribution_model,
        sum(weight) as total_weight,
        min(weight) as min_weight,
        max(weight) as max_weight
    from attribution
    group by conversion_id, attribution_model
)

select *
from per_model
where abs(total_weight - 1) > 1e-9
   or min_weight < 0
   or max_weight > 1
