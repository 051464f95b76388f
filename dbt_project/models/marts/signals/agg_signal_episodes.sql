{{ config(
    indexes=[{'columns': ['week_start', 'region', 'signal_key'], 'unique': True}],
) }}
{#- How long a flagged signal has stayed on the bad side of the normal it left, and the week it
    came back: one row per signal, region and week of an episode.
    Method and grain: its docs block in _signals__docs.md. -#}
with recursive signals as materialized (
    select
        s.*,
        -- worse is lower for scores, rates and engagement, higher for case counts
        s.metric <> 'cases' as lower_is_worse,
        row_number() over (partition by s.region, s.signal_key order by s.week_start) as step
    from {{ ref('agg_touchpoint_signals') }} as s
),

walked (region, signal_key, step, week_start, state, started_week, weeks_running,
        normal_value, normal_low, normal_high) as (
    select
        region, signal_key, step, week_start,
        case when status = 'needs_attention' then 'flagged' else 'none' end,
        week_start, 1,
        baseline_value, baseline_low, baseline_high
    from signals
    where step = 1
    union all
    select
        s.region, s.signal_key, s.step, s.week_start,
        case
            when w.state in ('flagged', 'continuing') then
                case
                    -- a week without a value (no answers, no cases) does not end an episode
                    when s.value is null then 'continuing'
                    when s.lower_is_worse and s.value < w.normal_low then 'continuing'
                    when not s.lower_is_worse and s.value > w.normal_high then 'continuing'
                    else 'back_to_normal'
                end
            when s.status = 'needs_attention' then 'flagged'
            else 'none'
        end,
        case when w.state in ('flagged', 'continuing') then w.started_week else s.week_start end,
        case when w.state in ('flagged', 'continuing') then w.weeks_running + 1 else 1 end,
        -- an episode keeps the normal it left; a new one takes this week's
        case when w.state in ('flagged', 'continuing') then w.normal_value else s.baseline_value end,
        case when w.state in ('flagged', 'continuing') then w.normal_low else s.baseline_low end,
        case when w.state in ('flagged', 'continuing') then w.normal_high else s.baseline_high end
    from walked as w
    join signals as s
        on s.region = w.region and s.signal_key = w.signal_key and s.step = w.step + 1
),

final as (
    select
        w.week_start,
        w.region,
        w.signal_key,
        s.grain,
        s.channel,
        s.touchpoint,
        s.category,
        s.business_unit,
        s.metric,
        s.section,
        w.state,
        w.started_week,
        w.weeks_running,
        w.normal_value,
        w.normal_low,
        w.normal_high,
        s.value,
        s.sample
    from walked as w
    join signals as s using (region, signal_key, step)
    where w.state <> 'none'
)

select * from final
