-- Every conversion is credited by every model, once per path touchpoint: no conversion goes
-- missing from attribution and no model has a shorter or longer path than another.
-- In the daily scope, the conversions the build wrote or credited anew.
with conversions as (
    select * from {{ ref('fct_conversions') }}
    where true {{ among_written('conversion_id', [(ref('fct_conversions'), 'conversion_id'), (ref('fct_attribution'), 'conversion_id')]) }}
),

attribution as (
    select * from {{ ref('fct_attribution') }}
    where conversion_id in (select conversion_id from conversions)
),

models as (
    select model from (
        values {% for model in var('attribution_models') %}('{{ model }}'){{ ', ' if not loop.last }}{% endfor %}
    ) as m (model)
),

expected as (
    select c.conversion_id, m.model
    from conversions as c
    cross join models as m
),

credited as (
    select conversion_id, attribution_model as model, count(*) as path_rows, max(path_length) as path_length
    from attribution
    group by conversion_id, attribution_model
)

select e.conversion_id, e.model, c.path_rows, c.path_length
from expected as e
left join credited as c on c.conversion_id = e.conversion_id and c.model = e.model
where c.conversion_id is null or c.path_rows <> c.path_length
