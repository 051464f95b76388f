{{ config(
    materialized='table',
    indexes=[{'columns': ['week_start', 'region', 'touchpoint'], 'unique': True}],
) }}
{#- Which touchpoints detractors met before their answer, against all NPS answers: per week
    (the answers of the signal_baseline_weeks ending with it), region and touchpoint.
    Method and grain: its docs block in _feedback__docs.md. -#}
with answers as (
    select f.feedback_id, f.submitted_at, f.nps_group, coalesce(c.region, 'Unknown') as region
    from {{ ref('fct_feedback') }} as f
    left join {{ ref('dim_customers') }} as c using (customer_key)
    where f.survey_type = 'NPS' and f.nps_group is not null
),

windowed as (
    -- an answer counts in its own week and the signal_baseline_weeks - 1 after it
    select a.feedback_id, a.nps_group, regions.region,
           ({{ week_of('a.submitted_at') }} + 7 * shift)::date as week_start
    from answers as a
    cross join generate_series(0, {{ var('signal_baseline_weeks') }} - 1) as shift
    cross join lateral (values ('(all)'), (a.region)) as regions (region)
),

last_week as (
    select max({{ week_of('submitted_at') }}) as week_start from answers
),

totals as (
    select week_start, region, count(*) as answers,
           count(*) filter (where nps_group = 'detractor') as detractor_answers
    from windowed
    group by 1, 2
),

touched as (
    select distinct feedback_id, touchpoint from {{ ref('fct_feedback_touchpoints') }}
),

by_touchpoint as (
    select w.week_start, w.region, t.touchpoint,
           count(*) as answers_after,
           count(*) filter (where w.nps_group = 'detractor') as detractor_answers_after
    from windowed as w
    join touched as t using (feedback_id)
    group by 1, 2, 3
),

final as (
    select
        b.week_start,
        b.region,
        b.touchpoint,
        b.answers_after,
        b.detractor_answers_after,
        t.answers,
        t.detractor_answers,
        b.answers_after::numeric / t.answers as answer_share,
        b.detractor_answers_after::numeric / nullif(t.detractor_answers, 0) as detractor_share,
        (b.detractor_answers_after::numeric / nullif(t.detractor_answers, 0))
            / (b.answers_after::numeric / t.answers) as detractor_lift
    from by_touchpoint as b
    join totals as t using (week_start, region)
    where b.week_start <= (select week_start from last_week)
)

select * from final
