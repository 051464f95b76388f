-- A removal effect is a share of the chain's conversions (0..1), computed from a chain that
-- converts. Returns the offending (period, channel) rows.
select *
from {{ ref('int_markov_removal_effects') }}
where removal_effect < 0
   or removal_effect > 1
   or conversion_probability <= 0
   or conversion_probability > 1 + 1e-9
   or conversion_probability_without < -1e-9
   or conversion_probability_without > conversion_probability + 1e-9
   or estimation_conversions < 1
