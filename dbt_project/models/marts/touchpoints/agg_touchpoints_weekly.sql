{{ config(
    materialized='incremental',
    unique_key='grain',
    incremental_strategy='replace',
    replace_key='week_start',
    on_schema_change='ignore',
    indexes=[{'columns': ['week_start', 'grain', 'region', 'business_unit', 'channel', 'touchpoint'], 'unique': True}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- The weekly report's numbers per week, grain, region and business unit, from
    int_weekly_totals.
    Method, grain and incremental logic: its docs block in _touchpoints__docs.md. -#}
{%- set models = var('attribution_models') -%}
with
{%- if is_incremental() %}
recomputed_weeks as materialized (
    -- a week whose totals changed, and the week after it (its comparison with the week before)
    select week_start from {{ ref('int_weekly_totals') }} where _updated_at > {{ watermark() }}
    union
    select week_start + 7 from {{ ref('int_weekly_totals') }} where _updated_at > {{ watermark() }}
),
{%- endif %}

totals as (
    -- a group is reported in a week when it has touchpoints that week
    select * from {{ ref('int_weekly_totals') }}
    where touchpoints > 0
    {%- if is_incremental() %}
      and (week_start in (select week_start from recomputed_weeks)
           or week_start in (select week_start - 7 from recomputed_weeks))
    {%- endif %}
),

unioned as (
    select
        week_start,
        grain,
        region,
        business_unit,
        channel,
        touchpoint,
        touchpoints,
        customers,
        anonymous_touchpoints,
        new_customers,
        {%- for model in models %}
        credit_{{ model }}::double precision as conversions_{{ model }},
        {%- endfor %}
        csat_sum / nullif(csat_responses, 0) as csat,
        csat_responses,
        100.0 * (promoters - detractors) / nullif(nps_responses, 0) as nps,
        nps_responses,
        dissatisfied_responses
    from totals
),

all_measured as (
    select
        unioned.*,
        conversions_linear as conversions,
        case when customers > 0 then conversions_linear / customers end as conversion_rate
    from unioned
),

measured as (
    select * from all_measured
    {%- if is_incremental() %}
    where week_start in (select week_start from recomputed_weeks)
    {%- endif %}
),

previous_weeks as (
    select * from all_measured
),

compared as (
    select
        cur.*,
        prev.touchpoints as previous_touchpoints,
        prev.customers as previous_customers,
        prev.new_customers as previous_new_customers,
        prev.conversions as previous_conversions,
        prev.conversion_rate as previous_conversion_rate,
        prev.csat as previous_csat,
        prev.csat_responses as previous_csat_responses,
        prev.nps as previous_nps,
        prev.nps_responses as previous_nps_responses,
        case when prev.touchpoints > 0 then cur.touchpoints::numeric / prev.touchpoints - 1 end as touchpoints_change
    from measured as cur
    left join previous_weeks as prev
        on prev.week_start = cur.week_start - 7
        and prev.grain = cur.grain and prev.region = cur.region and prev.business_unit = cur.business_unit
        and prev.channel = cur.channel and prev.touchpoint = cur.touchpoint
),

final as (
    select * from compared
)

{% if is_incremental() %}
{{ replace_rows('final', 'recomputed_weeks', 'recomputed_weeks.week_start') }}
{% else %}
select * from final
{% endif %}
