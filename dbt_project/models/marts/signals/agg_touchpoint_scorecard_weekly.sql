{{ config(
    indexes=[{'columns': ['week_start', 'region', 'grain', 'key', 'metric'], 'unique': True}],
) }}
{#- Where each channel and touchpoint stands: its CSAT, NPS and conversion rate per week and
    region against the company's and against its own trailing weeks, with the weeks it has
    stayed below the company.
    Method and grain: its docs block in _signals__docs.md. -#}
{%- set prior = var('scorecard_prior_weight') -%}
with all_measures as (
    select * from {{ ref('int_signal_measures_weekly') }}
    where metric in ('csat', 'nps', 'conversion_rate')
),

measures as (
    select * from all_measures where grain in ('channel', 'touchpoint')
),

company as (
    -- the whole base: each answer or reached customer once, however many keys it followed
    select week_start, region, metric, sample as company_sample,
           total / nullif(sample, 0) as company_level
    from all_measures
    where grain = 'company'
),

volumes as (
    -- touchpoints per channel, and per touchpoint over all its channels
    select week_start, region, 'channel' as grain, channel as key, sum(touchpoints) as touchpoints
    from {{ ref('agg_touchpoints_weekly') }}
    where grain = 'channel'
    group by 1, 2, 3, 4
    union all
    select week_start, region, 'touchpoint', touchpoint, sum(touchpoints)
    from {{ ref('agg_touchpoints_weekly') }}
    where grain = 'touchpoint'
    group by 1, 2, 3, 4
),

levels as (
    select
        m.week_start,
        m.region,
        m.grain,
        case when m.grain = 'channel' then m.channel else m.touchpoint end as key,
        m.channel,
        m.touchpoint,
        m.business_unit,
        m.metric,
        m.sample,
        m.total / nullif(m.sample, 0) as level,
        case m.metric
            when 'conversion_rate' then {{ var('signal_min_customers') }}
            else {{ var('signal_min_answers') }}
        end as min_sample,
        case m.metric
            when 'csat' then {{ var('scorecard_csat_margin') }}
            when 'nps' then {{ var('scorecard_nps_margin') }}
            else {{ var('scorecard_conversion_margin') }}
        end as margin
    from measures as m
),

against_company as (
    select
        l.*,
        c.company_level,
        c.company_sample,
        l.sample >= l.min_sample as has_enough_sample,
        -- the level pulled toward the company's by a prior of scorecard_prior_weight units: a
        -- small sample's extreme level is mostly noise
        (l.sample * l.level + {{ prior }} * c.company_level) / (l.sample + {{ prior }}) as shrunk_level
    from levels as l
    join company as c using (week_start, region, metric)
),

gaps as (
    select
        a.*,
        a.shrunk_level - a.company_level as level_gap,
        -- how many margins below the company: points for scores, relative for the rate
        case
            when a.metric = 'conversion_rate' then
                case when a.company_level > 0 then (1 - a.shrunk_level / a.company_level) / a.margin end
            else (a.company_level - a.shrunk_level) / a.margin
        end as margins_below
    from against_company as a
),

own_trailing as (
    -- its own levels over the weeks before, those with enough sample: a window, not a self-join
    -- (the planner, blind to a CTE's size, ran the self-join once per row: 4 of the demo's 5 s)
    select
        g.*,
        array_agg(g.level) filter (where g.has_enough_sample) over (
            partition by g.region, g.grain, g.key, g.metric
            order by g.week_start
            range between interval '{{ 7 * var('signal_baseline_weeks') }} days' preceding
                and interval '1 day' preceding
        ) as trailing_levels
    from gaps as g
),

judged as (
    select
        t.*,
        (
            select percentile_cont(0.5) within group (order by earlier.level)
            from unnest(t.trailing_levels) as earlier (level)
        ) as trailing_median,
        coalesce(cardinality(t.trailing_levels), 0) as trailing_weeks,
        case when t.has_enough_sample then t.margins_below >= 1 end as is_below
    from own_trailing as t
),

runs as (
    -- a run of weeks below ends at a judged week that is not below; a week with too small a
    -- sample neither ends it nor counts
    select
        j.*,
        count(*) filter (where is_below = false) over (
            partition by region, grain, key, metric order by week_start
        ) as run_id
    from judged as j
),

final as (
    select
        week_start,
        region,
        grain,
        key,
        channel,
        touchpoint,
        business_unit,
        metric,
        sample,
        has_enough_sample,
        case when has_enough_sample then level end as level,
        company_level,
        company_sample,
        case when has_enough_sample then level_gap end as level_gap,
        case when has_enough_sample then margins_below end as margins_below,
        trailing_median,
        trailing_weeks,
        coalesce(is_below, false) as is_below,
        case
            when is_below then count(*) filter (where is_below) over (
                partition by region, grain, key, metric, run_id order by week_start
            )
            else 0
        end as weeks_below,
        case
            when is_below then row_number() over (
                partition by week_start, region, grain, is_below order by margins_below desc, key, metric
            )
        end as worst_rank
    from runs
)

select
    final.*,
    coalesce(v.touchpoints, 0) as touchpoints
from final
left join volumes as v using (week_start, region, grain, key)
