/* depends_on: {{ ref('int_events_classified') }} {{ ref('int_customers_located') }} */
{{ config(
    materialized='incremental',
    unique_key='unit_id',
    incremental_strategy='replace',
    replace_key='customer_key',
    replace_from_key='week_start',
    on_schema_change='ignore',
    indexes=[
        {'columns': ['week_start', 'grain', 'key', 'metric', 'unit_id'], 'unique': True},
        {'columns': ['customer_key', 'week_start']},
    ],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark(as_of=newest_customer_week()) }}"],
) }}
{#- The units (answers, reached and cohort customers) behind the customer-level weekly
    signals, one row per week, key, metric and unit.
    Method, grain and incremental logic: its docs block in _int_signals__docs.md. -#}
{%- set lookback = "interval '1 day' * " ~ var('feedback_lookback_days') -%}
{%- set attribution = "interval '1 day' * " ~ var('attribution_lookback_days') -%}
{%- set window_weeks = [var('signal_reach_weeks') - 1, var('signal_cohort_weeks')] | max -%}
{%- if is_incremental() and execute -%}
    {#- the last week any unit may fall in (the newest customer touch's), at the last run and
        now, as literals -#}
    {%- set saved_bound = saved_as_of() -%}
    {%- set bound = run_query("select " ~ newest_customer_week() ~ "::text").rows[0][0] -%}
    {%- set now_bound = "'" ~ (bound if bound is not none else '-infinity') ~ "'::timestamptz" -%}
{%- endif %}
with
{%- if is_incremental() %}
rederived as materialized (
    -- customers whose units may have changed, from the week they may have changed from: the
    -- time their touchpoints, conversions or answers changed from (a unit of a week depends on
    -- nothing later than the week); all weeks when their region changed; the weeks between
    -- the last bound and this one when the newest touch's week moved
    select customer_key, min(from_week) as from_week
    from (
        select customer_key, {{ week_of('changed_from') }} as from_week
        from ({{ changed_customers() }}) as changed
        union all
        select customer_key, '-infinity'::date
        from {{ ref('int_customers_located') }}
        where _updated_at > {{ watermark() }}
        {%- if saved_bound != now_bound %}
        union all
        select customer_key, (least({{ saved_bound }}, {{ now_bound }}) at time zone 'UTC')::date + 7
        from {{ ref('fct_touchpoints') }}
        where customer_key is not null
          and occurred_at >= least({{ saved_bound }}, {{ now_bound }}) - interval '7 days' * {{ window_weeks }}
        union all
        select customer_key, (least({{ saved_bound }}, {{ now_bound }}) at time zone 'UTC')::date + 7
        from {{ this }}
        where week_start > (least({{ saved_bound }}, {{ now_bound }}) at time zone 'UTC')::date
        {%- endif %}
    ) as changes
    where customer_key is not null
    group by customer_key
),
{%- endif %}

{#- On an incremental run, each input holds only what the rederived customers' units from
    their week on can read: touches from the reach and cohort windows (or the attribution
    lookback) before it, conversions and answers from it. #}
touchpoints as (
    select t.* from {{ ref('fct_touchpoints') }} as t
    {%- if is_incremental() %}
    join rederived as r on r.customer_key = t.customer_key
    where t.occurred_at >= least(
        (r.from_week - 7 * {{ window_weeks }})::timestamp at time zone 'UTC',
        (r.from_week::timestamp at time zone 'UTC') - {{ attribution }}
    )
    {%- endif %}
),

feedback as (
    select f.* from {{ ref('fct_feedback') }} as f
    {%- if is_incremental() %}
    join rederived as r on r.customer_key = f.customer_key
    where f.submitted_at >= r.from_week::timestamp at time zone 'UTC'
    {%- endif %}
),

feedback_touchpoints as (
    select * from {{ ref('fct_feedback_touchpoints') }}
    {%- if is_incremental() %}
    where feedback_id in (select feedback_id from feedback)
    {%- endif %}
),

conversions as (
    select c.* from {{ ref('fct_conversions') }} as c
    {%- if is_incremental() %}
    join rederived as r on r.customer_key = c.customer_key
    where c.converted_at >= r.from_week::timestamp at time zone 'UTC'
    {%- endif %}
),

located as (
    select customer_key, region from {{ ref('int_customers_located') }}
),

known_touches as (
    select
        t.customer_key,
        t.occurred_at,
        {{ week_of('t.occurred_at') }} as week_start,
        t.channel,
        t.touchpoint,
        t.journey_stage,
        t.direction = 'inbound' and t.source <> 'crm' as is_engagement
    from touchpoints as t
    where t.customer_key is not null
),

bound as (
    -- the newest customer touch's week: no unit falls after it
    {%- if is_incremental() %}
    select ({{ now_bound }} at time zone 'UTC')::date as week_start
    {%- else %}
    select max(week_start) as week_start from known_touches
    {%- endif %}
),

-- satisfaction: each answer once per key it followed -----------------------------------------
answers as (
    select
        f.feedback_id,
        f.customer_key,
        {{ week_of('f.submitted_at') }} as week_start,
        case when f.survey_type = 'CSAT' then 'csat' else 'nps' end as metric,
        case
            when f.survey_type = 'CSAT' then f.score::numeric
            when f.score >= 9 then 100
            when f.score >= 7 then 0
            else -100
        end as unit_value
    from feedback as f
    where f.customer_key is not null and f.score is not null and f.survey_type in ('CSAT', 'NPS')
),

answer_keys as (
    select distinct a.feedback_id, 'touchpoint' as grain, ft.touchpoint as key
    from answers as a
    join feedback_touchpoints as ft on ft.feedback_id = a.feedback_id
    union
    select distinct a.feedback_id, 'channel', ft.channel
    from answers as a
    join feedback_touchpoints as ft on ft.feedback_id = a.feedback_id
),

satisfaction_units as (
    select a.week_start, a.feedback_id::text as unit_id, a.customer_key, k.grain, k.key, a.metric, a.unit_value
    from answers as a
    join answer_keys as k on k.feedback_id = a.feedback_id
),

-- conversion: customers reached in the trailing weeks, and those of them converting -----------
reach_touches as (
    select distinct customer_key, week_start, grain, key
    from known_touches
    cross join lateral (values ('touchpoint', touchpoint), ('channel', channel)) as keys (grain, key)
    where journey_stage in ('awareness', 'consideration')
),

reached as (
    -- a touch in week w reaches its customer in weeks w .. w + signal_reach_weeks - 1
    select distinct r.customer_key, r.grain, r.key, (r.week_start + 7 * shift)::date as week_start
    from reach_touches as r
    cross join generate_series(0, {{ var('signal_reach_weeks') }} - 1) as shift
    where r.week_start + 7 * shift <= (select week_start from bound)
),

converted as (
    select distinct c.customer_key, {{ week_of('c.converted_at') }} as week_start, keys.grain, keys.key
    from conversions as c
    join known_touches as t
        on t.customer_key = c.customer_key
        and t.occurred_at < c.converted_at
        and t.occurred_at >= c.converted_at - {{ attribution }}
        and t.journey_stage in ('awareness', 'consideration')
    cross join lateral (values ('touchpoint', t.touchpoint), ('channel', t.channel)) as keys (grain, key)
),

conversion_units as (
    select
        r.week_start, r.customer_key::text as unit_id, r.customer_key, r.grain, r.key, 'conversion_rate' as metric,
        case when c.customer_key is not null then 1 else 0 end::numeric as unit_value
    from reached as r
    left join converted as c
        on c.customer_key = r.customer_key and c.week_start = r.week_start
        and c.grain = r.grain and c.key = r.key
),

-- engagement: the cohort that met the key in the weeks before, and its inbound touches -------
met as (
    select distinct customer_key, week_start, grain, key
    from known_touches
    cross join lateral (values ('touchpoint', touchpoint), ('channel', channel)) as keys (grain, key)
),

cohorts as (
    -- met in week w: in the cohort of weeks w + 1 .. w + signal_cohort_weeks
    select distinct m.customer_key, m.grain, m.key, (m.week_start + 7 * shift)::date as week_start
    from met as m
    cross join generate_series(1, {{ var('signal_cohort_weeks') }}) as shift
    where m.week_start + 7 * shift <= (select week_start from bound)
),

customer_weeks as (
    select customer_key, week_start, count(*) filter (where is_engagement) as inbound_touchpoints
    from known_touches
    group by customer_key, week_start
),

engagement_units as (
    select
        c.week_start, c.customer_key::text as unit_id, c.customer_key, c.grain, c.key, 'engagement' as metric,
        coalesce(w.inbound_touchpoints, 0)::numeric as unit_value
    from cohorts as c
    left join customer_weeks as w on w.customer_key = c.customer_key and w.week_start = c.week_start
),

key_units as (
    select * from satisfaction_units
    union all
    select * from conversion_units
    union all
    select * from engagement_units
),

company_units as (
    -- the whole base (grain company, key all): each answer, reached or cohort customer once,
    -- whatever keys it followed; reached customers convert for the company when they do for
    -- any key
    select week_start, unit_id, customer_key, 'company' as grain, 'all' as key, metric,
           max(unit_value) as unit_value
    from key_units
    group by week_start, unit_id, customer_key, metric
),

customer_units as (
    select * from key_units
    union all
    select * from company_units
),

final as (
    select
        u.week_start,
        u.grain,
        u.key,
        u.metric,
        u.unit_id,
        u.customer_key,
        coalesce(l.region, 'Unknown') as region,
        u.unit_value
    from customer_units as u
    left join located as l on l.customer_key = u.customer_key
    {%- if is_incremental() %}
    join rederived as r on r.customer_key = u.customer_key
    where u.week_start >= r.from_week
    {%- endif %}
)

{% if is_incremental() %}
{{ replace_rows('final', 'rederived', 'rederived.customer_key', 'rederived.from_week') }}
{% else %}
select * from final
{% endif %}
