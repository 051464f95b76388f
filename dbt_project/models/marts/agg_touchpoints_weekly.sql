{{ config(indexes=[{'columns': ['week_start', 'grain']}]) }}
{#- The weekly report's numbers, per ISO week (Monday, UTC) at three grains: the whole week
    (channel and touchpoint '(all)'), per channel, per channel and touchpoint. Conversions are
    credited to the week they happened in; satisfaction is that of the survey answers that
    followed the touchpoints of the week (within var('feedback_lookback_days')). -#}
{% set grains = "grouping sets ((week_start), (week_start, channel), (week_start, channel, touchpoint))" %}

with touchpoints as (
    select *, date_trunc('week', occurred_at at time zone 'UTC')::date as week_start
    from {{ ref('fct_touchpoints') }}
),

attribution as (
    select *, date_trunc('week', converted_at at time zone 'UTC')::date as week_start
    from {{ ref('fct_attribution') }}
),

feedback_after as (
    select ft.*, f.survey_type, f.score, f.is_dissatisfied,
           date_trunc('week', ft.occurred_at at time zone 'UTC')::date as week_start
    from {{ ref('fct_feedback_touchpoints') }} as ft
    join {{ ref('fct_feedback') }} as f using (feedback_id)
),

volume as (
    select
        week_start, channel, touchpoint, grouping(channel, touchpoint) as grouping_id,
        count(*) as touchpoints,
        count(distinct customer_key) as customers,
        count(*) filter (where customer_key is null) as anonymous_touchpoints
    from touchpoints
    group by {{ grains }}
),

credited as (
    select
        week_start, channel, touchpoint, grouping(channel, touchpoint) as grouping_id,
        sum(weight) filter (where attribution_model = 'first_touch') as conversions_first_touch,
        sum(weight) filter (where attribution_model = 'last_touch') as conversions_last_touch,
        sum(weight) filter (where attribution_model = 'linear') as conversions_linear,
        sum(weight) filter (where attribution_model = 'position_based') as conversions_position_based,
        sum(weight) filter (where attribution_model = 'time_decay') as conversions_time_decay
    from attribution
    group by {{ grains }}
),

satisfaction as (
    select
        week_start, channel, touchpoint, grouping(channel, touchpoint) as grouping_id,
        avg(score) filter (where survey_type = 'CSAT') as avg_csat_after,
        avg(score) filter (where survey_type = 'NPS') as avg_nps_score_after,
        count(distinct feedback_id) as feedback_after,
        count(distinct feedback_id) filter (where is_dissatisfied) as dissatisfied_feedback_after
    from feedback_after
    group by {{ grains }}
),

joined as (
    select
        v.week_start,
        case v.grouping_id when 3 then 'week' when 1 then 'channel' else 'touchpoint' end as grain,
        coalesce(v.channel, '(all)') as channel,
        coalesce(v.touchpoint, '(all)') as touchpoint,
        v.touchpoints,
        v.customers,
        v.anonymous_touchpoints,
        coalesce(c.conversions_first_touch, 0) as conversions_first_touch,
        coalesce(c.conversions_last_touch, 0) as conversions_last_touch,
        coalesce(c.conversions_linear, 0) as conversions_linear,
        coalesce(c.conversions_position_based, 0) as conversions_position_based,
        coalesce(c.conversions_time_decay, 0) as conversions_time_decay,
        s.avg_csat_after,
        s.avg_nps_score_after,
        coalesce(s.feedback_after, 0) as feedback_after,
        coalesce(s.dissatisfied_feedback_after, 0) as dissatisfied_feedback_after
    from volume as v
    left join credited as c
        on c.week_start = v.week_start and c.grouping_id = v.grouping_id
        and c.channel is not distinct from v.channel and c.touchpoint is not distinct from v.touchpoint
    left join satisfaction as s
        on s.week_start = v.week_start and s.grouping_id = v.grouping_id
        and s.channel is not distinct from v.channel and s.touchpoint is not distinct from v.touchpoint
),

final as (
    select
        joined.*,
        case when customers > 0 then conversions_linear / customers end as conversion_rate,
        lag(touchpoints) over (partition by grain, channel, touchpoint order by week_start) as previous_week_touchpoints,
        case when lag(touchpoints) over (partition by grain, channel, touchpoint order by week_start) > 0
             then touchpoints::numeric / lag(touchpoints) over (partition by grain, channel, touchpoint order by week_start) - 1
        end as touchpoints_change
    from joined
)

select * from final
