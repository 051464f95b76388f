{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['contributor', 'week_start']}, {'columns': ['_logged_at']}],
    post_hook=["{{ analyze_if_rebuilt('_logged_at') }}", "{{ save_watermark() }}"],
) }}
/* depends_on: {{ ref('int_events_classified') }} {{ ref('stg_hubspot__feedback_submissions') }} {{ ref('int_identifiers_mapped') }} {{ ref('int_markov_removal_effects') }} {{ ref('fct_conversions') }} */
{#- The ledger of what each contributor (a customer, or an anonymous touchpoint) adds to the
    weekly report's numbers, per week and finest group.
    Method, grain and incremental logic: its docs block in _int_weekly__docs.md. -#}
{%- set lookback = "interval '1 day' * " ~ var('feedback_lookback_days') -%}
{%- set kinds = var('attribution_models') -%}
with
{%- if is_incremental() %}
contacts as (
    select identifier as contact_id, customer_key
    from {{ ref('int_identifiers_mapped') }}
    where identifier_type = 'hubspot_contact' and customer_key is not null
),

recompute_from as (
    -- customers, from the time their numbers may have changed
    select customer_key, changed_from as from_time from ({{ changed_customers() }}) as changed
    union all
    select customer_key, '-infinity' from {{ ref('int_customers_located') }} where _updated_at > {{ watermark() }}
    union all
    -- an answer staged since: its lookback window
    select contacts.customer_key, coalesce(f.submitted_at - {{ lookback }}, '-infinity')
    from {{ ref('stg_hubspot__feedback_submissions') }} as f
    join contacts on contacts.contact_id = f.contact_id
    where f._loaded_at > {{ watermark() }}
    union all
    -- an answer whose time or customer changed: every window it had, for every customer it had
    select keys.customer_key, times.occurred_at - {{ lookback }}
    from ({{ changed_events() }}) as changed
    cross join lateral unnest(array_append(changed.former_customer_keys, changed.customer_key)) as keys (customer_key)
    cross join lateral unnest(array_append(changed.former_occurred_ats, changed.occurred_at)) as times (occurred_at)
    where changed.source = 'crm' and changed.event_type = 'feedback' and keys.customer_key is not null
    union all
    -- a conversion of a period whose data-driven removal effects changed: from its week
    select c.customer_key, date_trunc('week', c.converted_at at time zone 'UTC') at time zone 'UTC'
    from {{ ref('fct_conversions') }} as c
    where {{ week_of('c.converted_at') }} in (
        select week_start from {{ ref('int_markov_removal_effects') }} where _updated_at > {{ watermark() }}
    )
),

recompute as materialized (
    -- from_week: the Monday the recomputation starts on (as a date, and as the UTC instant)
    select
        customer_key as contributor,
        customer_key,
        {{ week_of('min(from_time)') }} as from_week,
        date_trunc('week', min(from_time) at time zone 'UTC') at time zone 'UTC' as from_instant
    from recompute_from
    group by customer_key
    union all
    -- every changed event, as the anonymous touchpoint it may be or have been: all of it
    select 'anon:' || event_key, null, '-infinity'::date, '-infinity'::timestamptz
    from ({{ changed_events() }}) as changed
),
{%- endif %}

located as not materialized (
    select customer_key, region from {{ ref('int_customers_located') }}
),

units as (
    select channel, business_unit from {{ ref('business_units') }}
),

first_touches as (
    -- each customer's first touchpoint ever (by time, then touchpoint_id)
    {%- if is_incremental() %}
    select first_touch.touchpoint_id
    from recompute
    cross join lateral (
        select f.touchpoint_id from {{ ref('fct_touchpoints') }} as f
        where f.customer_key = recompute.customer_key
        order by f.occurred_at, f.touchpoint_id
        limit 1
    ) as first_touch
    where recompute.customer_key is not null
    {%- else %}
    select distinct on (customer_key) touchpoint_id
    from {{ ref('fct_touchpoints') }}
    where customer_key is not null
    order by customer_key, occurred_at, touchpoint_id
    {%- endif %}
),

touchpoints as (
    select
        coalesce(t.customer_key, 'anon:' || t.touchpoint_id) as contributor,
        t.customer_key,
        t.touchpoint_id,
        t.occurred_at,
        t.channel,
        t.touchpoint
    from {{ ref('fct_touchpoints') }} as t
    {%- if is_incremental() %}
    join recompute on recompute.customer_key = t.customer_key and t.occurred_at >= recompute.from_instant
    union all
    select 'anon:' || t.touchpoint_id, null, t.touchpoint_id, t.occurred_at, t.channel, t.touchpoint
    from {{ ref('fct_touchpoints') }} as t
    where t.customer_key is null
      and t.touchpoint_id in (select substr(contributor, 6) from recompute where customer_key is null)
    {%- endif %}
),

touch_rows as (
    select
        t.contributor,
        'touch' as kind,
        {{ week_of('t.occurred_at') }} as week_start,
        coalesce(located.region, 'Unknown') as region,
        coalesce(units.business_unit, 'other') as business_unit,
        t.channel,
        t.touchpoint,
        null::text as feedback_id,
        null::text as survey_type,
        null::numeric as score,
        null::text as nps_group,
        null::boolean as is_dissatisfied,
        count(*) as touchpoints,
        count(first.touchpoint_id) as first_touches,
        {%- for kind in kinds %}
        0::numeric as credit_{{ kind }},
        {%- endfor %}
        0 as answers
    from touchpoints as t
    -- a join, not `in (subquery)`: past work_mem the planner scans the subquery's rows for
    -- every touchpoint (a 7-week catch-up at scale S ran for over 5 minutes)
    left join first_touches as first on first.touchpoint_id = t.touchpoint_id
    left join located on located.customer_key = t.customer_key
    left join units on units.channel = t.channel
    group by 1, 2, 3, 4, 5, 6, 7
),

credit_rows as (
    select
        a.customer_key as contributor,
        'credit' as kind,
        {{ week_of('a.converted_at') }} as week_start,
        coalesce(located.region, 'Unknown') as region,
        coalesce(units.business_unit, 'other') as business_unit,
        t.channel,
        t.touchpoint,
        null::text as feedback_id,
        null::text as survey_type,
        null::numeric as score,
        null::text as nps_group,
        null::boolean as is_dissatisfied,
        0 as touchpoints,
        0 as first_touches,
        {%- for kind in kinds %}
        coalesce(sum(a.weight::numeric) filter (where a.attribution_model = '{{ kind }}'), 0) as credit_{{ kind }},
        {%- endfor %}
        0 as answers
    from {{ ref('fct_attribution') }} as a
    {%- if is_incremental() %}
    join recompute on recompute.customer_key = a.customer_key and a.converted_at >= recompute.from_instant
    {%- endif %}
    join {{ ref('fct_touchpoints') }} as t on t.touchpoint_id = a.touchpoint_id
    left join located on located.customer_key = t.customer_key
    left join units on units.channel = t.channel
    group by 1, 2, 3, 4, 5, 6, 7
),

answer_rows as (
    select distinct
        ft.customer_key as contributor,
        'answer' as kind,
        {{ week_of('ft.occurred_at') }} as week_start,
        coalesce(located.region, 'Unknown') as region,
        coalesce(units.business_unit, 'other') as business_unit,
        ft.channel,
        ft.touchpoint,
        f.feedback_id,
        f.survey_type,
        f.score,
        f.nps_group,
        f.is_dissatisfied,
        0 as touchpoints,
        0 as first_touches,
        {%- for kind in kinds %}
        0::numeric as credit_{{ kind }},
        {%- endfor %}
        1 as answers
    from {{ ref('fct_feedback_touchpoints') }} as ft
    {%- if is_incremental() %}
    join recompute on recompute.customer_key = ft.customer_key and ft.occurred_at >= recompute.from_instant
    {%- endif %}
    join {{ ref('fct_feedback') }} as f on f.feedback_id = ft.feedback_id
    left join located on located.customer_key = ft.customer_key
    left join units on units.channel = ft.channel
),

contributions as (
    select * from touch_rows
    union all
    select * from credit_rows
    union all
    select * from answer_rows
),

{% if is_incremental() %}
logged as (
    -- what the ledger holds now for the recomputed contributors and weeks
    select l.*
    from {{ this }} as l
    join recompute on recompute.contributor = l.contributor and l.week_start >= recompute.from_week
),

final as (
    -- the difference between the contributions now and the ledger's
    select
        contributor, kind, week_start, region, business_unit, channel, touchpoint,
        feedback_id, survey_type, score, nps_group, is_dissatisfied,
        sum(touchpoints) as touchpoints,
        sum(first_touches) as first_touches,
        {%- for kind in kinds %}
        sum(credit_{{ kind }}) as credit_{{ kind }},
        {%- endfor %}
        sum(answers) as answers,
        now() as _logged_at
    from (
        select contributor, kind, week_start, region, business_unit, channel, touchpoint,
               feedback_id, survey_type, score, nps_group, is_dissatisfied,
               touchpoints, first_touches,
               {%- for kind in kinds %} credit_{{ kind }},{% endfor %}
               answers
        from contributions
        union all
        select contributor, kind, week_start, region, business_unit, channel, touchpoint,
               feedback_id, survey_type, score, nps_group, is_dissatisfied,
               -touchpoints, -first_touches,
               {%- for kind in kinds %} -credit_{{ kind }},{% endfor %}
               -answers
        from logged
    ) as signed
    group by contributor, kind, week_start, region, business_unit, channel, touchpoint,
             feedback_id, survey_type, score, nps_group, is_dissatisfied
    having sum(touchpoints) <> 0 or sum(first_touches) <> 0 or sum(answers) <> 0
        {%- for kind in kinds %} or sum(credit_{{ kind }}) <> 0{% endfor %}
)
{% else %}
final as (
    select contributions.*, now() as _logged_at from contributions
)
{% endif %}

select * from final
