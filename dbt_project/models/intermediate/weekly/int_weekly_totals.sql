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
{#- The weekly report's additive totals per week, grain, region, business unit, channel and
    touchpoint, summed from the contributions ledger.
    Method, grain and incremental logic: its docs block in _int_weekly__docs.md. -#}
{%- set models = var('attribution_models') -%}
with
{%- if is_incremental() %}
changed as materialized (
    select distinct contributor, week_start
    from {{ ref('int_weekly_contributions') }}
    where _logged_at > {{ watermark() }}
),

now_rows as (
    -- their ledger rows in those weeks, each looked up by (contributor, week_start); offset 0
    -- keeps the lookups: flattened into a join, the planner hashed the whole ledger (1.4 M rows
    -- at bench scale M, for 22 k changed pairs), a cost that grows with the history
    select l.*
    from changed
    cross join lateral (
        select * from {{ ref('int_weekly_contributions') }} as ledger
        where ledger.contributor = changed.contributor and ledger.week_start = changed.week_start
        offset 0
    ) as l
),

ledger as (
    -- the rows now (sign 1) and as they were at the watermark (sign -1)
    select 1 as sign, now_rows.* from now_rows
    union all
    select -1, now_rows.* from now_rows where _logged_at <= {{ watermark() }}
),
{%- else %}
ledger as (
    select 1 as sign, contributions.* from {{ ref('int_weekly_contributions') }} as contributions
),
{%- endif %}

netted as (
    -- a contributor's rows per key, summed (the ledger appends differences)
    select
        sign, contributor, kind, week_start, region, business_unit, channel, touchpoint,
        feedback_id, survey_type, score, nps_group, is_dissatisfied,
        sum(touchpoints) as touchpoints,
        sum(first_touches) as first_touches,
        {%- for model in models %}
        sum(credit_{{ model }}) as credit_{{ model }},
        {%- endfor %}
        sum(answers) as answers
    from ledger
    group by sign, contributor, kind, week_start, region, business_unit, channel, touchpoint,
             feedback_id, survey_type, score, nps_group, is_dissatisfied
),

grouped as (
    -- every netted row in each of its eight groups: four grains, its region and '(all)'
    select netted.*, groups.grain, slices.region_slice,
           groups.business_unit as group_business_unit, groups.channel as group_channel,
           groups.touchpoint as group_touchpoint
    from netted
    cross join lateral (values ('(all)'), (netted.region)) as slices (region_slice)
    cross join lateral (values
        ('week', '(all)', '(all)', '(all)'),
        ('business_unit', netted.business_unit, '(all)', '(all)'),
        ('channel', netted.business_unit, netted.channel, '(all)'),
        ('touchpoint', netted.business_unit, netted.channel, netted.touchpoint)
    ) as groups (grain, business_unit, channel, touchpoint)
),

per_contributor as (
    -- one contributor's share of a group
    select
        sign, week_start, grain, region_slice, group_business_unit, group_channel, group_touchpoint, contributor,
        sum(touchpoints) as touchpoints,
        sum(first_touches) as first_touches,
        {%- for model in models %}
        sum(credit_{{ model }}) as credit_{{ model }},
        {%- endfor %}
        bool_or(kind = 'touch' and touchpoints > 0) as is_present
    from grouped
    where kind in ('touch', 'credit')
    group by sign, week_start, grain, region_slice, group_business_unit, group_channel, group_touchpoint, contributor
),

answers_present as (
    -- one answer in a group: once, however many of its touchpoints it followed
    select distinct
        sign, week_start, grain, region_slice, group_business_unit, group_channel, group_touchpoint,
        feedback_id, survey_type, score, nps_group, is_dissatisfied
    from grouped
    where kind = 'answer' and answers > 0
),

volume as (
    select
        sign, week_start, grain, region_slice, group_business_unit, group_channel, group_touchpoint,
        sum(touchpoints) as touchpoints,
        count(*) filter (where is_present and contributor not like 'anon:%') as customers,
        coalesce(sum(touchpoints) filter (where contributor like 'anon:%'), 0) as anonymous_touchpoints,
        sum(first_touches) as new_customers,
        {%- for model in models %}
        sum(credit_{{ model }}) as credit_{{ model }}{{ ',' if not loop.last }}
        {%- endfor %}
    from per_contributor
    group by sign, week_start, grain, region_slice, group_business_unit, group_channel, group_touchpoint
),

satisfaction as (
    select
        sign, week_start, grain, region_slice, group_business_unit, group_channel, group_touchpoint,
        coalesce(sum(score) filter (where survey_type = 'CSAT'), 0) as csat_sum,
        count(*) filter (where survey_type = 'CSAT') as csat_responses,
        count(*) filter (where nps_group = 'promoter') as promoters,
        count(*) filter (where nps_group = 'detractor') as detractors,
        count(*) filter (where survey_type = 'NPS') as nps_responses,
        count(*) filter (where is_dissatisfied) as dissatisfied_responses
    from answers_present
    group by sign, week_start, grain, region_slice, group_business_unit, group_channel, group_touchpoint
),

totals as (
    -- the totals of each side of the ledger, times its sign
    select
        sign,
        week_start,
        grain,
        region_slice as region,
        group_business_unit as business_unit,
        group_channel as channel,
        group_touchpoint as touchpoint,
        (sign * coalesce(volume.touchpoints, 0))::bigint as touchpoints,
        (sign * coalesce(volume.customers, 0))::bigint as customers,
        (sign * coalesce(volume.anonymous_touchpoints, 0))::bigint as anonymous_touchpoints,
        (sign * coalesce(volume.new_customers, 0))::bigint as new_customers,
        {%- for model in models %}
        sign * coalesce(volume.credit_{{ model }}, 0) as credit_{{ model }},
        {%- endfor %}
        sign * coalesce(satisfaction.csat_sum, 0) as csat_sum,
        (sign * coalesce(satisfaction.csat_responses, 0))::bigint as csat_responses,
        (sign * coalesce(satisfaction.promoters, 0))::bigint as promoters,
        (sign * coalesce(satisfaction.detractors, 0))::bigint as detractors,
        (sign * coalesce(satisfaction.nps_responses, 0))::bigint as nps_responses,
        (sign * coalesce(satisfaction.dissatisfied_responses, 0))::bigint as dissatisfied_responses
    from volume
    full join satisfaction
        using (sign, week_start, grain, region_slice, group_business_unit, group_channel, group_touchpoint)
),

{%- if is_incremental() %}

deltas as (
    select
        week_start, grain, region, business_unit, channel, touchpoint,
        sum(touchpoints)::bigint as touchpoints,
        sum(customers)::bigint as customers,
        sum(anonymous_touchpoints)::bigint as anonymous_touchpoints,
        sum(new_customers)::bigint as new_customers,
        {%- for model in models %}
        sum(credit_{{ model }}) as credit_{{ model }},
        {%- endfor %}
        sum(csat_sum) as csat_sum,
        sum(csat_responses)::bigint as csat_responses,
        sum(promoters)::bigint as promoters,
        sum(detractors)::bigint as detractors,
        sum(nps_responses)::bigint as nps_responses,
        sum(dissatisfied_responses)::bigint as dissatisfied_responses
    from totals
    group by week_start, grain, region, business_unit, channel, touchpoint
    having sum(touchpoints) <> 0 or sum(customers) <> 0 or sum(anonymous_touchpoints) <> 0
        or sum(new_customers) <> 0 or sum(csat_sum) <> 0 or sum(csat_responses) <> 0
        or sum(promoters) <> 0 or sum(detractors) <> 0 or sum(nps_responses) <> 0
        or sum(dissatisfied_responses) <> 0
        {%- for model in models %}
        or sum(credit_{{ model }}) <> 0
        {%- endfor %}
),

final as (
    select
        week_start, grain, region, business_unit, channel, touchpoint,
        coalesce(stored.touchpoints, 0) + deltas.touchpoints as touchpoints,
        coalesce(stored.customers, 0) + deltas.customers as customers,
        coalesce(stored.anonymous_touchpoints, 0) + deltas.anonymous_touchpoints as anonymous_touchpoints,
        coalesce(stored.new_customers, 0) + deltas.new_customers as new_customers,
        {%- for model in models %}
        coalesce(stored.credit_{{ model }}, 0) + deltas.credit_{{ model }} as credit_{{ model }},
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

final as (
    select
        week_start, grain, region, business_unit, channel, touchpoint,
        touchpoints, customers, anonymous_touchpoints, new_customers,
        {%- for model in models %}
        credit_{{ model }},
        {%- endfor %}
        csat_sum, csat_responses, promoters, detractors, nps_responses, dissatisfied_responses,
        now() as _updated_at
    from totals
)
{%- endif %}

select * from final
