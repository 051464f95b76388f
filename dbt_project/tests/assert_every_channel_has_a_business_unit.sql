-- Every channel the taxonomy can give a touchpoint belongs to a business unit (seed business_units).
select distinct taxonomy.channel
from {{ ref('touchpoint_taxonomy') }} as taxonomy
left join {{ ref('business_units') }} as units on units.channel = taxonomy.channel
where units.channel is null
