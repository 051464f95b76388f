{{ config(
    materialized='incremental',
    unique_key=['week_start', 'grain', 'region', 'business_unit', 'channel', 'touchpoint'],
    incremental_strategy='delete+insert',
    pre_hook="set local work_mem = '256MB'",
    indexes=[
        {'columns': ['week_start', 'grain', 'region', 'business_unit', 'channel', 'touchpoint'], 'unique': True},
        {'columns': ['_updated_at']},
    ],
    post_hook=["{{ analyze_if_rebuilt('_updated_at') }}", "{{ save_watermark() }}"],
) }}
{#- The weekly report's additive totals per ISO week (Monday, UTC), grain (week, business
    unit, channel, touchpoint), region ('(all)' and each one), business unit, channel and
    touchpoint: touchpoints, customers, anonymous touchpoints, new customers, credit per
    attribution model (exact, numeric), and the sums and counts of the survey answers that
    followed the group's touchpoints. agg_touchpoints_weekly derives its rates and trends from
    them. Built from int_weekly_contributions (weekly_totals_of).

    Incremental: only the contributors with ledger rows logged since the watermark can have
    changed a total, and only in the weeks of those rows. For each such (contributor, week)
    the totals of its contributions as they are now and as they were at the watermark (its
    rows logged before it) are computed the same way; the difference is added to the stored
    totals of the groups it touches. Customers and answers are counted per contributor, so
    a customer who leaves a group or joins it moves the count by exactly one. -#}
with
{%- if is_incremental() %}
changed as materialized (
    select distinct contributor, week_start
    from {{ ref('int_weekly_contributions') }}
    where _logged_at > {{ watermark() }}
),

now_rows as (
    -- their ledger rows in those weeks, each looked up by (contributor, week_start)
    select l.*
    from changed
    cross join lateral (
        select * from {{ ref('int_weekly_contributions') }} as ledger
        where ledger.contributor = changed.contributor and ledger.week_start = changed.week_start
    ) as l
),

before_rows as (
    select * from now_rows where _logged_at <= {{ watermark() }}
),

deltas as (
    select
        week_start, grain, region, business_unit, channel, touchpoint,
        sum(touchpoints)::bigint as touchpoints,
        sum(customers)::bigint as customers,
        sum(anonymous_touchpoints)::bigint as anonymous_touchpoints,
        sum(new_customers)::bigint as new_customers,
        {%- for kind in var('attribution_models') %}
        sum(credit_{{ kind }}) as credit_{{ kind }},
        {%- endfor %}
        sum(csat_sum) as csat_sum,
        sum(csat_responses)::bigint as csat_responses,
        sum(promoters)::bigint as promoters,
        sum(detractors)::bigint as detractors,
        sum(nps_responses)::bigint as nps_responses,
        sum(dissatisfied_responses)::bigint as dissatisfied_responses
    from (
        ({{ weekly_totals_of('now_rows', '1') }})
        union all
        ({{ weekly_totals_of('before_rows', '-1') }})
    ) as signed
    group by week_start, grain, region, business_unit, channel, touchpoint
    having sum(touchpoints) <> 0 or sum(customers) <> 0 or sum(anonymous_touchpoints) <> 0
        or sum(new_customers) <> 0 or sum(csat_sum) <> 0 or sum(csat_responses) <> 0
        or sum(promoters) <> 0 or sum(detractors) <> 0 or sum(nps_responses) <> 0
        or sum(dissatisfied_responses) <> 0
        {%- for kind in var('attribution_models') %}
        or sum(credit_{{ kind }}) <> 0
        {%- endfor %}
),

final as (
    select
        week_start, grain, region, business_unit, channel, touchpoint,
        coalesce(stored.touchpoints, 0) + deltas.touchpoints as touchpoints,
        coalesce(stored.customers, 0) + deltas.customers as customers,
        coalesce(stored.anonymous_touchpoints, 0) + deltas.anonymous_touchpoints as anonymous_touchpoints,
        coalesce(stored.new_customers, 0) + deltas.new_customers as new_customers,
        {%- for kind in var('attribution_models') %}
        coalesce(stored.credit_{{ kind }}, 0) + deltas.credit_{{ kind }} as credit_{{ kind }},
        {%- endfor %}
        coalesce(stored.csat_sum, 0) + deltas.csat_sum as csat_sum,
        coalesce(stored.csat_responses, 0) + deltas.csat_responses as csat_responses,
        coalesce(stored.promoters, 0) + deltas.promoters as promoters,
        coalesce(stored.detractors, 0) + deltas.detractors as detractors,
        coalesce(stored.nps_responses, 0) + deltas.nps_responses as nps_responses,
        coalesce(stored.dissatisfied_responses, 0) + deltas.dissatisfied_responses as dissatisfied_responses,
        now() as _updated_at
    from deltas
    left join {{ this }} as stored using (week_start, grain, region, business_unit, channel, touchpoint)
)
{%- else %}
totals as (
    {{ weekly_totals_of(ref('int_weekly_contributions')) }}
),

final as (
    select totals.*, now() as _updated_at from totals
)
{%- endif %}

select * from final
