{#- In the marts schema, granted and commented like a mart (dbt_project.yml's marts config does
    not reach this folder): the analyst's queries of the semantic layer join it. -#}
{{ config(
    materialized='table',
    schema='marts',
    persist_docs={'relation': true, 'columns': true},
    post_hook="{{ grant_mart_access() }}",
) }}
{#- One row per day, for MetricFlow's joins over time (offsets such as touchpoints_change).
    A fixed range, so that no build has to extend it. -#}
with days as (
    select generate_series('2015-01-01'::date, '2045-12-31'::date, interval '1 day')::date as date_day
),

final as (
    select date_day from days
)

select * from final
