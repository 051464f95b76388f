-- Every conversion is credited by every model, once per path touchpoint: no conversion goes
-- missing from attribution and no model has a shorter or longer path than another.
with conversions as (
    select * from {{ ref('fct_conversions') }}
),

attribution as (
    select * from {{ ref('fct_attribution') }}
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
