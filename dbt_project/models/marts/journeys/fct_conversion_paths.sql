{{ config(
    materialized='table',
    indexes=[{'columns': ['path_key'], 'unique': True}, {'columns': ['path_end_at']}],
) }}
{#- The channel paths the data-driven attribution model is estimated on: every conversion's,
    and every customer's week without one.
    Method and grain: its docs block in _journeys__docs.md. -#}
{%- set lookback = "interval '1 day' * " ~ (var('attribution_lookback_days') | int) -%}
with conversions as (
    select conversion_id, customer_key, converted_at from {{ ref('fct_conversions') }}
),

touchpoints as not materialized (
    select touchpoint_id, customer_key, occurred_at, channel
    from {{ ref('fct_touchpoints') }}
    where customer_key is not null
),

converting_touches as (
    -- the touchpoints fct_attribution credits: strictly before the conversion, in the window
    select c.conversion_id, t.touchpoint_id, t.occurred_at, t.channel
    from conversions as c
    join touchpoints as t
        on t.customer_key = c.customer_key
        and t.touchpoint_id <> c.conversion_id
        and t.occurred_at < c.converted_at
        and t.occurred_at >= c.converted_at - {{ lookback }}
),

converting as (
    -- a conversion with nothing before it: the path of its self-credit, 'direct'
    select
        md5('conversion:' || c.conversion_id) as path_key,
        c.customer_key,
        c.converted_at as path_end_at,
        {{ week_of('c.converted_at') }} as week_start,
        true as is_converting,
        c.conversion_id,
        coalesce(
            array_agg(t.channel order by t.occurred_at, t.touchpoint_id) filter (where t.touchpoint_id is not null),
            array['direct']
        ) as channel_path
    from conversions as c
    left join converting_touches as t on t.conversion_id = c.conversion_id
    group by c.conversion_id, c.customer_key, c.converted_at
),

idle_weeks as (
    -- a customer's weeks with a touchpoint and no conversion
    select distinct t.customer_key, {{ week_of('t.occurred_at') }} as week_start
    from touchpoints as t
    where not exists (
        select from conversions as c
        where c.customer_key = t.customer_key
          and {{ week_of('c.converted_at') }} = {{ week_of('t.occurred_at') }}
    )
),

non_converting as (
    select
        md5('week:' || w.customer_key || ':' || w.week_start::text) as path_key,
        w.customer_key,
        {{ estimation_period_end('w.week_start') }} as path_end_at,
        w.week_start,
        false as is_converting,
        null::text as conversion_id,
        array_agg(t.channel order by t.occurred_at, t.touchpoint_id) as channel_path
    from idle_weeks as w
    join touchpoints as t
        on t.customer_key = w.customer_key
        and t.occurred_at < {{ estimation_period_end('w.week_start') }}
        and t.occurred_at >= {{ estimation_period_end('w.week_start') }} - {{ lookback }}
    group by w.customer_key, w.week_start
),

paths as (
    select * from converting
    union all
    select * from non_converting
),

final as (
    select
        path_key,
        customer_key,
        path_end_at,
        week_start,
        is_converting,
        conversion_id,
        channel_path,
        cardinality(channel_path) as touchpoints,
        (select count(distinct c) from unnest(channel_path) as c)::integer as distinct_channels
    from paths
)

select * from final
