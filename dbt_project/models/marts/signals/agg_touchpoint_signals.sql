{#- The weekly signals the report names: each channel, touchpoint and case category against
    its own trailing weeks, per region.
    Method and grain: its docs block in _signals__docs.md. -#}
{%- set z = var('signal_z') -%}
{%- set prior = var('signal_dispersion_prior_df') -%}
with recursive measures as (
    select * from {{ ref('int_signal_measures_weekly') }}
),

units as (
    select * from {{ ref('int_signal_units_weekly') }}
),

keys as (
    select distinct region, grain, channel, touchpoint, category, business_unit, metric
    from measures
),

bounds as (
    select min(week_start) as first_week, max(week_start) as last_week from measures
),

weeks as (
    select week::date as week_start
    from bounds
    cross join generate_series(bounds.first_week, bounds.last_week, interval '7 days') as week
),

grid as (
    select
        weeks.week_start,
        keys.*,
        case keys.metric
            when 'csat' then {{ var('signal_min_answers') }}
            when 'nps' then {{ var('signal_min_answers') }}
            when 'cases' then {{ var('signal_min_cases') }}
            else {{ var('signal_min_customers') }}
        end as min_sample
    from weeks
    cross join keys
),

filled as (
    select
        grid.*,
        coalesce(m.sample, 0) as sample,
        coalesce(m.total, 0) as total,
        coalesce(m.total_sq, 0) as total_sq,
        case
            when grid.metric = 'cases' then coalesce(m.total, 0)
            when m.sample > 0 then m.total / m.sample
        end as value,
        -- a week whose measure looks back further than the warehouse's history is incomplete
        -- too (fewer reached / cohort customers): the warm-up covers that look-back
        grid.week_start >= bounds.first_week + 7 * greatest(
            {{ var('signal_warmup_weeks') }},
            case grid.metric
                when 'conversion_rate' then {{ var('signal_reach_weeks') }} - 1
                when 'engagement' then {{ var('signal_cohort_weeks') }}
                else 0
            end
        ) as is_past_warmup
    from grid
    cross join bounds
    left join measures as m
        on m.week_start = grid.week_start and m.region = grid.region and m.grain = grid.grain
        and m.metric = grid.metric
        and m.channel is not distinct from grid.channel
        and m.touchpoint is not distinct from grid.touchpoint
        and m.category is not distinct from grid.category
),

usable as (
    -- whether a week may be a baseline: past the warm-up; for a mean, with a judged-size sample
    select
        filled.*,
        is_past_warmup and (metric = 'cases' or sample >= min_sample) as is_usable
    from filled
),

baselines as (
    -- the trailing weeks (the grid is dense, so the frame is signal_baseline_weeks weeks)
    select
        u.*,
        count(*) filter (where is_usable) over trailing_weeks as baseline_weeks,
        sum(sample) filter (where is_usable) over trailing_weeks as baseline_sample,
        sum(total) filter (where is_usable) over trailing_weeks as baseline_total,
        sum(total_sq) filter (where is_usable) over trailing_weeks as baseline_total_sq,
        -- within-week sums of squares (means): sum over weeks of xx - x^2/n
        sum(total_sq - total * total / nullif(sample, 0)) filter (where is_usable) over trailing_weeks as baseline_within_ss,
        min(value) filter (where is_usable) over trailing_weeks as baseline_low,
        max(value) filter (where is_usable) over trailing_weeks as baseline_high,
        avg(value) filter (where is_usable) over trailing_weeks as baseline_mean_count,
        -- the weekly values' spread around their pooled level: sum n_i * mean_i^2 (means),
        -- sum c_i^2 (counts)
        sum(case when metric = 'cases' then value * value else sample * value * value end)
            filter (where is_usable) over trailing_weeks as sum_n_sq_dev,
        array_agg(value) filter (where is_usable) over trailing_weeks as baseline_values
    from usable as u
    window trailing_weeks as (
        partition by region, grain, metric, channel, touchpoint, category
        order by week_start rows between {{ var('signal_baseline_weeks') }} preceding and 1 preceding
    )
),

medians as (
    select
        baselines.*,
        (select percentile_cont(0.5) within group (order by v) from unnest(baseline_values) as v) as baseline_value
    from baselines
),

noise as (
    select
        medians.*,
        case when metric <> 'cases' and baseline_sample > 0 then baseline_total / baseline_sample end as pooled_mean,
        case
            when metric <> 'cases' and baseline_sample > baseline_weeks
                then greatest(baseline_within_ss, 0) / (baseline_sample - baseline_weeks)
        end as within_variance
    from medians
),

case_clusters as (
    -- cases: the mean cluster size sum(clusters^2) / cases of the baseline weeks, over all the
    -- categories of the week and region (how recurring problems cluster is the customers' habit;
    -- a small category's own weeks are too few to show it)
    select week_start, region, sum(baseline_total_sq) / nullif(sum(baseline_total), 0) as pooled_cluster
    from noise
    where metric = 'cases'
    group by week_start, region
),

clustered as (
    select
        noise.*,
        case
            when noise.metric = 'cases' then greatest(
                1.0,
                coalesce(noise.baseline_total_sq / nullif(noise.baseline_total, 0), 1.0),
                coalesce(cc.pooled_cluster, 1.0)
            )
        end as case_cluster
    from noise
    left join case_clusters as cc on noise.metric = 'cases' and cc.week_start = noise.week_start and cc.region = noise.region
),

dispersed as (
    select
        clustered.*,
        case
            when baseline_weeks >= 2 and metric = 'cases' and baseline_mean_count > 0
                -- sum (c_i - mean)^2 / (mean * cluster) = (sum c_i^2 - k * mean^2) / (mean * cluster)
                then (sum_n_sq_dev - baseline_weeks * baseline_mean_count * baseline_mean_count)
                    / (baseline_mean_count * case_cluster)
            when baseline_weeks >= 2 and metric <> 'cases' and within_variance > 0
                -- sum n_i (mean_i - pooled)^2 / s2 = (sum n_i mean_i^2 - N * pooled^2) / s2
                then (sum_n_sq_dev - baseline_sample * pooled_mean * pooled_mean) / within_variance
        end as chi2
    from clustered
),

scored as (
    select
        dispersed.*,
        greatest(1.0, (greatest(coalesce(chi2, 0), 0) + {{ prior }})
                      / (greatest(coalesce(baseline_weeks, 0) - 1, 0) + {{ prior }})) as dispersion,
        case
            when metric = 'cases' then baseline_value
            when metric in ('conversion_rate', 'engagement') then baseline_value * sample
            else baseline_value
        end as expected_units,
        case
            when metric = 'cases'
                then greatest(baseline_value, 1) * case_cluster * (1 + pi() / 2 / nullif(baseline_weeks, 0))
            when sample > 0 and baseline_sample > 0
                then within_variance * (1.0 / sample + pi() / 2 / baseline_sample)
        end as noise_variance
    from dispersed
),

judged as (
    select
        scored.*,
        case
            when not is_past_warmup then 'warmup'
            when coalesce(baseline_weeks, 0) < {{ var('signal_min_baseline_weeks') }} then 'baseline'
            when sample < min_sample then 'sample'
            when metric = 'conversion_rate' and expected_units < {{ var('signal_min_expected') }} then 'sample'
            when metric <> 'cases' and not (noise_variance > 0) then 'sample'
        end as not_judged_reason,
        value - baseline_value as change,
        value / nullif(baseline_value, 0) as ratio,
        (value - baseline_value) / nullif(sqrt(dispersion * noise_variance), 0) as z_score
    from scored
),

classified as (
    select
        judged.*,
        not_judged_reason is null as is_judged,
        case
            when not_judged_reason is not null then 'not_judged'
            when metric = 'csat' and z_score <= -{{ z }} and change <= -{{ var('signal_csat_change') }} then 'needs_attention'
            when metric = 'csat' and z_score >= {{ z }} and change >= {{ var('signal_csat_change') }} then 'improved'
            when metric = 'nps' and z_score <= -{{ z }} and change <= -{{ var('signal_nps_change') }} then 'needs_attention'
            when metric = 'nps' and z_score >= {{ z }} and change >= {{ var('signal_nps_change') }} then 'improved'
            when metric = 'conversion_rate' and z_score <= -{{ z }} and ratio - 1 <= -{{ var('signal_conversion_change') }} then 'needs_attention'
            when metric = 'conversion_rate' and z_score >= {{ z }} and ratio - 1 >= {{ var('signal_conversion_change') }} then 'improved'
            when metric = 'engagement' and z_score <= -{{ z }} and ratio - 1 <= -{{ var('signal_engagement_change') }} then 'needs_attention'
            -- a category that had no cases at all rises by any factor
            when metric = 'cases' and z_score >= {{ z }} and coalesce(ratio - 1 >= {{ var('signal_cases_change') }}, true) then 'needs_attention'
            else 'steady'
        end as status,
        case metric
            when 'cases' then 'recurring_problems'
            when 'engagement' then 'at_risk'
            else 'needs_attention'
        end as section,
        grain || ':' || coalesce(case grain when 'channel' then channel when 'touchpoint' then touchpoint when 'company' then 'all' else category end, '')
            || ':' || metric as signal_key
    from judged
),

channel_explained as (
    -- a flagged channel row: by its strongest touchpoint flagged the same way
    select distinct on (ch.signal_key, ch.week_start, ch.region)
        ch.signal_key, ch.week_start, ch.region, tp.signal_key as explained_by
    from classified as ch
    join classified as tp
        on tp.week_start = ch.week_start and tp.region = ch.region and tp.metric = ch.metric
        and tp.status = ch.status and tp.grain = 'touchpoint' and tp.channel = ch.channel
    where ch.grain = 'channel' and ch.status in ('needs_attention', 'improved')
    order by ch.signal_key, ch.week_start, ch.region, abs(tp.z_score) desc, tp.signal_key
),

-- across keys (customer-level metrics): whose anomaly is it? ---------------------------------
flagged as (
    select
        signal_key, week_start, region, grain, metric, status, z_score, min_sample, sample, total,
        baseline_value, baseline_sample, dispersion, within_variance,
        case grain when 'channel' then channel when 'company' then 'all' else touchpoint end as key
    from classified
    where status in ('needs_attention', 'improved') and metric in ('csat', 'nps', 'conversion_rate', 'engagement')
),

flagged_units as (
    -- the units of each flagged row (a region's row: its region's customers)
    select f.signal_key, f.week_start, f.region, f.metric, f.status, u.unit_id, u.unit_value
    from flagged as f
    join units as u
        on u.week_start = f.week_start and u.metric = f.metric and u.grain = f.grain and u.key = f.key
        and (f.region = '(all)' or u.region = f.region)
),

unit_memberships as (
    -- each flagged row's unit with the other flagged rows (same week, region, metric, status) it
    -- also counts for (a window, not a self-join: a few thousand units per flagged key)
    select
        signal_key, week_start, region, unit_value,
        array_agg(signal_key) over (partition by week_start, region, metric, status, unit_id) as members
    from flagged_units
),

shared_units as (
    -- b's units that are also a's
    select m.signal_key, m.week_start, m.region, other_key,
        count(*) as shared_sample, sum(m.unit_value) as shared_total
    from unit_memberships as m
    cross join lateral unnest(m.members) as other_key
    where other_key <> m.signal_key
    group by m.signal_key, m.week_start, m.region, other_key
),

residual_sums as (
    -- b's units that are not a's
    select
        b.signal_key, b.week_start, b.region, a.signal_key as other_key,
        b.sample - coalesce(s.shared_sample, 0) as residual_sample,
        b.total - coalesce(s.shared_total, 0) as residual_total
    from flagged as b
    join flagged as a
        on a.week_start = b.week_start and a.region = b.region and a.metric = b.metric
        and a.status = b.status and a.signal_key <> b.signal_key
    left join shared_units as s
        on s.signal_key = b.signal_key and s.week_start = b.week_start and s.region = b.region
        and s.other_key = a.signal_key
),

residuals as (
    -- the residual judged like a week, against b's baseline and noise: 'small' (below b's
    -- minimum sample: it tells nothing), 'anomalous' (its z reaches signal_z in b's direction;
    -- for the whole base, signal_company_residual_z: the customers outside a cohort falling
    -- too, with fewer units than the cohort's flag rests on) or 'normal'
    select
        r.*,
        f.z_score,
        case
            when r.residual_sample < f.min_sample
                or (f.metric = 'conversion_rate' and f.baseline_value * r.residual_sample < {{ var('signal_min_expected') }})
                then 'small'
            when sign(f.z_score) * (r.residual_total / r.residual_sample - f.baseline_value)
                / nullif(sqrt(f.dispersion * f.within_variance
                              * (1.0 / r.residual_sample + pi() / 2 / f.baseline_sample)), 0)
                >= case when f.grain = 'company' then {{ var('signal_company_residual_z') }} else {{ z }} end
                then 'anomalous'
            else 'normal'
        end as residual_state
    from residual_sums as r
    join flagged as f using (signal_key, week_start, region)
),

cross_explained as (
    -- b is explained by a flagged touchpoint or company row a when b's units that are not a's
    -- show no anomaly of their own, and a is the better explanation: a's units that are not b's
    -- are anomalous; or they are too few to tell while b's are normal (a within b, the anomaly
    -- in a's part); or both residuals are alike (both normal, both small: the same units) and a
    -- has the larger |z|. The strongest such a. A fall of the whole base is the company row's:
    -- the customers outside any one cohort fall too, so no cohort is the better explanation.
    select distinct on (b.signal_key, b.week_start, b.region)
        b.signal_key, b.week_start, b.region, b.other_key as explained_by, b.z_score,
        b.residual_state = 'small' and a.residual_state = 'small' as is_same_units
    from residuals as b
    join residuals as a
        on a.signal_key = b.other_key and a.other_key = b.signal_key
        and a.week_start = b.week_start and a.region = b.region
    where (b.other_key like 'touchpoint:%' or b.other_key like 'company:%')
        and b.residual_state <> 'anomalous'
        and (
            a.residual_state = 'anomalous'
            or (a.residual_state = 'small' and b.residual_state = 'normal')
            or (a.residual_state = b.residual_state and (
                abs(a.z_score) > abs(b.z_score)
                or (abs(a.z_score) = abs(b.z_score) and a.signal_key < b.signal_key)))
        )
    order by b.signal_key, b.week_start, b.region, abs(a.z_score) desc, b.other_key
),

explanation_walks as (
    -- from each explained row along explained_by. The judgements are pairwise and need not be
    -- transitive (the whole base is judged on a lower bar), so a walk may come back to where it
    -- began: every row of that cycle would be explained away and none shown
    select signal_key, week_start, region, explained_by as reached, array[signal_key] as path
    from cross_explained
    union all
    select w.signal_key, w.week_start, w.region, x.explained_by, w.path || x.signal_key
    from explanation_walks as w
    join cross_explained as x
        on x.signal_key = w.reached and x.week_start = w.week_start and x.region = w.region
    where x.signal_key <> all(w.path)
),

cycle_heads as (
    -- the strongest row of a cycle (largest |z|, then the smaller key) stands unexplained
    select w.signal_key, w.week_start, w.region
    from explanation_walks as w
    join cross_explained as me using (signal_key, week_start, region)
    where w.reached = w.signal_key
        and not exists (
            select 1
            from cross_explained as other
            where other.week_start = w.week_start and other.region = w.region
                and other.signal_key = any(w.path)
                and (abs(other.z_score) > abs(me.z_score)
                    or (abs(other.z_score) = abs(me.z_score) and other.signal_key < me.signal_key))
        )
),

explanations as (
    select x.*
    from cross_explained as x
    left join cycle_heads as h using (signal_key, week_start, region)
    where h.signal_key is null
),

named_with as (
    -- the touchpoint rows a shown row explains with the same units (each has fewer units
    -- outside the other's than a week needs to be judged): the data cannot tell them apart, the
    -- report names them together
    select
        explained_by as signal_key, week_start, region,
        string_agg(signal_key, ',' order by abs(z_score) desc, signal_key) as named_with
    from explanations
    where is_same_units and signal_key like 'touchpoint:%'
    group by explained_by, week_start, region
),

explained as (
    select
        c.signal_key, c.week_start, c.region,
        coalesce(ch.explained_by, x.explained_by) as explained_by
    from classified as c
    left join channel_explained as ch using (signal_key, week_start, region)
    left join explanations as x using (signal_key, week_start, region)
    where ch.explained_by is not null or x.explained_by is not null
),

final as (
    select
        c.signal_key,
        c.week_start,
        c.region,
        c.business_unit,
        c.grain,
        case when c.grain <> 'category' then c.channel end as channel,
        case when c.grain = 'touchpoint' then c.touchpoint end as touchpoint,
        c.category,
        case when c.grain = 'category' then c.touchpoint end as category_touchpoint,
        c.metric,
        c.section,
        c.value::numeric as value,
        c.sample::integer as sample,
        c.baseline_value::numeric as baseline_value,
        c.baseline_low::numeric as baseline_low,
        c.baseline_high::numeric as baseline_high,
        coalesce(c.baseline_sample, 0)::integer as baseline_sample,
        coalesce(c.baseline_weeks, 0)::integer as baseline_weeks,
        case when c.metric in ('conversion_rate', 'engagement') then c.expected_units else c.baseline_value end::numeric as expected,
        c.change::numeric as change,
        c.ratio::numeric as ratio,
        c.dispersion::numeric as dispersion,
        c.z_score::numeric as z_score,
        c.is_judged,
        c.not_judged_reason,
        c.status,
        e.explained_by,
        case when e.explained_by is null then n.named_with end as named_with,
        row_number() over (
            partition by c.week_start, c.region, c.section, c.status
            order by abs(c.z_score) desc nulls last, c.signal_key
        )::integer as rank
    from classified as c
    left join explained as e using (signal_key, week_start, region)
    left join named_with as n using (signal_key, week_start, region)
)

select * from final
