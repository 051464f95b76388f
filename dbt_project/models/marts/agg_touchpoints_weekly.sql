{{ config(indexes=[{'columns': ['week_start', 'grain', 'region']}]) }}
{#- The weekly report's numbers, per ISO week (Monday, UTC), at four grains: the whole week,
    a business unit (a set of channels, seed business_units), a channel, a touchpoint; each for
    every region together (region '(all)') and for each region (seed regions; 'Unknown' for
    customers without a country and anonymous visitors). A report slice is therefore a plain
    row selection: the report computes nothing itself.
    - new_customers: customers whose first touchpoint ever is in the row.
    - conversions: conversions of the week credited to the row's touchpoints (linear model;
      each model's credit is in its own column); conversion_rate = conversions / customers.
    - csat, nps: survey answers that followed the row's touchpoints within
      var('feedback_lookback_days'), each answer counted once per row.
    - previous_*: the same row one week earlier (null when it had no touchpoints).
    - trend (channel and touchpoint rows): 'needs_attention' when satisfaction or conversion
      fell beyond the report_* vars with enough answers / customers / conversions, 'improved'
      when one rose beyond them and none fell, else 'steady'. -#}
{% set grains = [
    ('week', []),
    ('business_unit', ['business_unit']),
    ('channel', ['business_unit', 'channel']),
    ('touchpoint', ['business_unit', 'channel', 'touchpoint']),
] %}
{% set all_dims = ['business_unit', 'channel', 'touchpoint'] %}

with customers as (
    select customer_key, region from {{ ref('dim_customers') }}
),

units as (
    select channel, business_unit from {{ ref('business_units') }}
),

touchpoints as (
    select
        t.touchpoint_id,
        t.customer_key,
        t.occurred_at,
        t.channel,
        t.touchpoint,
        date_trunc('week', t.occurred_at at time zone 'UTC')::date as week_start,
        coalesce(c.region, 'Unknown') as region,
        coalesce(u.business_unit, 'other') as business_unit,
        t.customer_key is not null and row_number() over (
            partition by t.customer_key order by t.occurred_at, t.touchpoint_id
        ) = 1 as is_first_touch
    from {{ ref('fct_touchpoints') }} as t
    left join customers as c on c.customer_key = t.customer_key
    left join units as u on u.channel = t.channel
),

-- every touchpoint counts once for its region and once for '(all)'
sliced as (
    select touchpoints.*, region_slice
    from touchpoints
    cross join lateral (values ('(all)'), (touchpoints.region)) as slices (region_slice)
),

credit as (
    select
        sliced.week_start as touch_week_start, sliced.region_slice, sliced.business_unit,
        sliced.channel, sliced.touchpoint,
        date_trunc('week', a.converted_at at time zone 'UTC')::date as week_start,
        a.attribution_model, a.weight
    from {{ ref('fct_attribution') }} as a
    join sliced on sliced.touchpoint_id = a.touchpoint_id
),

answers as (
    select
        sliced.week_start, sliced.region_slice, sliced.business_unit, sliced.channel, sliced.touchpoint,
        f.feedback_id, f.survey_type, f.score, f.nps_group, f.is_dissatisfied
    from {{ ref('fct_feedback_touchpoints') }} as ft
    join {{ ref('fct_feedback') }} as f on f.feedback_id = ft.feedback_id
    join sliced on sliced.touchpoint_id = ft.touchpoint_id
),

{% for grain, dims in grains %}
{%- set keys = ['week_start', 'region_slice'] + dims %}
volume_{{ grain }} as (
    select
        {{ keys | join(', ') }},
        count(*) as touchpoints,
        count(distinct customer_key) as customers,
        count(*) filter (where customer_key is null) as anonymous_touchpoints,
        count(*) filter (where is_first_touch) as new_customers
    from sliced
    group by {{ keys | join(', ') }}
),

credit_{{ grain }} as (
    select
        {{ keys | join(', ') }},
        {%- for model in ['first_touch', 'last_touch', 'linear', 'position_based', 'time_decay'] %}
        sum(weight) filter (where attribution_model = '{{ model }}') as conversions_{{ model }}{{ ',' if not loop.last }}
        {%- endfor %}
    from credit
    group by {{ keys | join(', ') }}
),

-- one row per answer and group, so an answer after several touchpoints counts once
answers_{{ grain }} as (
    select distinct {{ keys | join(', ') }}, feedback_id, survey_type, score, nps_group, is_dissatisfied
    from answers
),

satisfaction_{{ grain }} as (
    select
        {{ keys | join(', ') }},
        avg(score) filter (where survey_type = 'CSAT') as csat,
        count(*) filter (where survey_type = 'CSAT') as csat_responses,
        100.0 * (count(*) filter (where nps_group = 'promoter') - count(*) filter (where nps_group = 'detractor'))
            / nullif(count(*) filter (where survey_type = 'NPS'), 0) as nps,
        count(*) filter (where survey_type = 'NPS') as nps_responses,
        count(*) filter (where is_dissatisfied) as dissatisfied_responses
    from answers_{{ grain }}
    group by {{ keys | join(', ') }}
),

rows_{{ grain }} as (
    select
        v.week_start,
        '{{ grain }}'::text as grain,
        v.region_slice as region,
        {%- for dim in all_dims %}
        {{ 'v.' ~ dim if dim in dims else "'(all)'::text" }} as {{ dim }},
        {%- endfor %}
        v.touchpoints,
        v.customers,
        v.anonymous_touchpoints,
        v.new_customers,
        {%- for model in ['first_touch', 'last_touch', 'linear', 'position_based', 'time_decay'] %}
        coalesce(c.conversions_{{ model }}, 0) as conversions_{{ model }},
        {%- endfor %}
        s.csat,
        coalesce(s.csat_responses, 0) as csat_responses,
        s.nps,
        coalesce(s.nps_responses, 0) as nps_responses,
        coalesce(s.dissatisfied_responses, 0) as dissatisfied_responses
    from volume_{{ grain }} as v
    left join credit_{{ grain }} as c using ({{ keys | join(', ') }})
    left join satisfaction_{{ grain }} as s using ({{ keys | join(', ') }})
),
{% endfor %}

unioned as (
    {%- for grain, dims in grains %}
    select * from rows_{{ grain }}{{ ' union all' if not loop.last }}
    {%- endfor %}
),

measured as (
    select
        unioned.*,
        conversions_linear as conversions,
        case when customers > 0 then conversions_linear / customers end as conversion_rate
    from unioned
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
        case when prev.touchpoints > 0 then cur.touchpoints::numeric / prev.touchpoints - 1 end as touchpoints_change,
        -- the moves that count: enough evidence in both weeks and beyond the documented thresholds
        case when cur.csat_responses >= {{ var('report_min_responses') }}
                  and prev.csat_responses >= {{ var('report_min_responses') }}
             then cur.csat - prev.csat end as csat_change,
        case when cur.nps_responses >= {{ var('report_min_responses') }}
                  and prev.nps_responses >= {{ var('report_min_responses') }}
             then cur.nps - prev.nps end as nps_change,
        case when cur.customers >= {{ var('report_min_customers') }}
                  and prev.customers >= {{ var('report_min_customers') }}
                  and prev.conversion_rate > 0
                  and greatest(cur.conversions, prev.conversions) >= {{ var('report_min_conversions') }}
             then cur.conversion_rate / prev.conversion_rate - 1 end as conversion_rate_change
    from measured as cur
    left join measured as prev
        on prev.week_start = cur.week_start - 7
        and prev.grain = cur.grain and prev.region = cur.region and prev.business_unit = cur.business_unit
        and prev.channel = cur.channel and prev.touchpoint = cur.touchpoint
),

-- each metric's move in units of its threshold (1 = exactly the threshold)
moves as (
    select
        compared.*,
        fallen.metric as fallen_metric, fallen.size as fallen_size,
        risen.metric as risen_metric, risen.size as risen_size
    from compared
    left join lateral (
        select metric, size from (values
            ('csat', -csat_change / {{ var('report_csat_change') }}),
            ('nps', -nps_change / {{ var('report_nps_change') }}),
            ('conversion_rate', -conversion_rate_change / {{ var('report_conversion_rate_change') }})
        ) as falls (metric, size) where size >= 1 order by size desc limit 1
    ) as fallen on true
    left join lateral (
        select metric, size from (values
            ('csat', csat_change / {{ var('report_csat_change') }}),
            ('nps', nps_change / {{ var('report_nps_change') }}),
            ('conversion_rate', conversion_rate_change / {{ var('report_conversion_rate_change') }})
        ) as rises (metric, size) where size >= 1 order by size desc limit 1
    ) as risen on true
),

final as (
    select
        moves.*,
        case
            when grain not in ('channel', 'touchpoint') then null
            when fallen_metric is not null then 'needs_attention'
            when risen_metric is not null then 'improved'
            else 'steady'
        end as trend,
        case when grain in ('channel', 'touchpoint') then coalesce(fallen_metric, risen_metric) end as trend_metric,
        -- how far beyond its threshold the named metric moved (the report ranks by it)
        case when grain in ('channel', 'touchpoint') then coalesce(fallen_size, risen_size) end as trend_size
    from moves
)

select * from final
