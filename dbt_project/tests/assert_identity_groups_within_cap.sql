{{ config(severity='warn') }}
-- Identity groups larger than var('identity_max_identifiers'): not merged (each identifier
-- stays on its own). Usually a shared device or a missing exclusion: inspect and extend the
-- identity_exclusions seed.
select graph_component, max(component_size) as identifiers
from {{ ref('int_identity_components') }}
where is_over_cap
group by graph_component
