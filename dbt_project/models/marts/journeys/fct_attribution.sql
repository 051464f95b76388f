/* depends_on: {{ ref('int_events_classified') }} {{ ref('stg_hubspot__deals') }} */
{#- Multi-touch attribution: each conversion's path credited by every model of var
    attribution_models.
    Method, grain and incremental logic: its docs block in _journeys__docs.md. -#}
{{ config(
    materialized='incremental',
    unique_key='attribution_key',
    incremental_strategy='replace',
    replace_key='conversion_id',
    on_schema_change='ignore',
    indexes=[{'columns': ['attribution_key'], 'unique': True}, {'columns': ['conversion_id']}, {'columns': ['customer_key', 'converted_at']}, {'columns': ['converted_at']}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{%- set lookback_days = var('attribution_lookback_days') | int -%}
{%- set half_life_days = var('attribution_half_life_days') | float -%}
{%- if lookback_days <= 0 or half_life_days <= 0 -%}
    {{ exceptions.raise_compiler_error(
        "vars attribution_lookback_days and attribution_half_life_days must be positive, got "
        ~ var('attribution_lookback_days') ~ " and " ~ var('attribution_half_life_days')) }}
{%- endif -%}

with
{%- if is_incremental() %}
changed as (
    {{ changed_events() }}
),

customers as (
    {{ changed_customers() }}
),

replaced as (
    -- conversions whose rows are re-derived, including those that are gone
    select event_key as conversion_id from changed
    union
    select c.conversion_id
    from {{ ref('fct_conversions') }} as c
    join customers on customers.customer_key = c.customer_key
    where c.converted_at >= customers.changed_from
    union
    -- the data-driven weights of every conversion of a period whose removal effects changed
    select c.conversion_id
    from {{ ref('fct_conversions') }} as c
    where {{ week_of('c.converted_at') }} in (
        select week_start from {{ ref('int_markov_removal_effects') }} where _updated_at > {{ watermark() }}
    )
    union
    select conversion_id from ({{ revalued_conversions(ref('fct_conversions')) }}) as revalued
),
{%- endif %}

conversions as (
    select * from {{ ref('fct_conversions') }}
    {%- if is_incremental() %}
    where conversion_id in (select conversion_id from replaced)
    {%- endif %}
),

touchpoints as not materialized (
    select * from {{ ref('fct_touchpoints') }}
),

removal_effects as (
    select week_start, channel, removal_effect from {{ ref('int_markov_removal_effects') }}
),

web_campaigns as not materialized (
    select message_id as source_event_id, nullif(utm_campaign, '') as campaign from {{ ref('stg_segment__events') }}
),

email_campaigns as not materialized (
    select email_event_id as source_event_id, {{ email_campaign() }} as campaign
    from {{ ref('stg_sendgrid__events') }}
),

prior_touchpoints as (
    select
        c.conversion_id,
        c.customer_key,
        c.converted_at,
        c.conversion_type,
        c.conversion_value,
        c.currency,
        t.touchpoint_id,
        t.occurred_at as touched_at,
        t.channel,
        t.touchpoint,
        t.journey_stage,
        t.source,
        t.source_event_id,
        false as is_conversion_touchpoint
    from conversions as c
    inner join touchpoints as t
        on t.customer_key = c.customer_key
        and t.touchpoint_id <> c.conversion_id
        and t.occurred_at < c.converted_at
        and t.occurred_at >= c.converted_at - interval '{{ lookback_days }} days'
),

unattributed as (
    -- nothing to credit in the window: the conversion credits itself, as direct
    select
        c.conversion_id,
        c.customer_key,
        c.converted_at,
        c.conversion_type,
        c.conversion_value,
        c.currency,
        t.touchpoint_id,
        t.occurred_at as touched_at,
        'direct' as channel,
        t.touchpoint,
        t.journey_stage,
        t.source,
        t.source_event_id,
        true as is_conversion_touchpoint
    from conversions as c
    inner join touchpoints as t on t.touchpoint_id = c.conversion_id
    where not exists (select 1 from prior_touchpoints as p where p.conversion_id = c.conversion_id)
),

unioned as (
    select * from prior_touchpoints
    union all
    select * from unattributed
),

paths as (
    select
        unioned.*,
        case unioned.source when 'web' then web.campaign when 'email' then email.campaign end as campaign
    from unioned
    left join web_campaigns as web
        on unioned.source = 'web' and web.source_event_id = unioned.source_event_id
    left join email_campaigns as email
        on unioned.source = 'email' and email.source_event_id = unioned.source_event_id
),

positioned as (
    select
        paths.*,
        coalesce(e.removal_effect, 0) as removal_effect,
        -- the channel's touchpoints in the path, and its first one (its effect counted once)
        count(*) over (partition by paths.conversion_id, paths.channel)::double precision as channel_touches,
        row_number() over (
            partition by paths.conversion_id, paths.channel order by paths.touched_at, paths.touchpoint_id
        ) = 1 as is_channel_first,
        row_number() over (
            partition by conversion_id order by touched_at, touchpoint_id
        )::double precision as path_position,
        count(*) over (partition by conversion_id)::double precision as path_length,
        extract(epoch from converted_at - touched_at)::double precision / 86400 as days_before_conversion
    from paths
    -- the effects of the conversion's estimation period (its ISO week)
    left join removal_effects as e
        on e.week_start = {{ week_of('paths.converted_at') }} and e.channel = paths.channel
),

decayed as (
    select
        *,
        power(2::double precision, -days_before_conversion / {{ half_life_days }}) as decay
    from positioned
),

weighted as (
    select
        *,
        case when path_position = 1 then 1.0 else 0.0 end::double precision as w_first_touch,
        case when path_position = path_length then 1.0 else 0.0 end::double precision as w_last_touch,
        1 / path_length as w_linear,
        case
            when path_length = 1 then 1.0
            when path_length = 2 then 0.5
            when path_position in (1, path_length) then 0.4
            else 0.2 / (path_length - 2)
        end::double precision as w_position_based,
        -- summed in path order, so the total does not depend on the order rows are read in
        decay / sum(decay) over (
            partition by conversion_id order by touched_at, touchpoint_id
            rows between unbounded preceding and unbounded following
        ) as w_time_decay,
        -- the sum of the effects of the path's distinct channels, in path order
        sum(case when is_channel_first then removal_effect else 0 end) over (
            partition by conversion_id order by touched_at, touchpoint_id
            rows between unbounded preceding and unbounded following
        ) as path_removal_effect
    from decayed
),

data_driven as (
    select
        *,
        case
            when path_removal_effect > 0 then removal_effect / path_removal_effect / channel_touches
            -- no channel of the path matters to the chain: linear
            else 1 / path_length
        end as w_data_driven
    from weighted
),

by_model as (
    select
        w.*,
        m.attribution_model,
        m.weight
    from data_driven as w
    cross join lateral (
        values
        {%- for model in var('attribution_models') %}
            ('{{ model }}', w.w_{{ model }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as m (attribution_model, weight)
),

final as (
    select
        md5(conversion_id || ':' || touchpoint_id || ':' || attribution_model) as attribution_key,
        conversion_id,
        customer_key,
        converted_at,
        conversion_type,
        attribution_model,
        touchpoint_id,
        touched_at,
        channel,
        touchpoint,
        journey_stage,
        source,
        campaign,
        path_position::integer as path_position,
        path_length::integer as path_length,
        days_before_conversion,
        is_conversion_touchpoint,
        weight,
        -- each conversion counts once, so its credit is the weight
        weight as credited_conversions,
        conversion_value,
        currency,
        weight::numeric * conversion_value as credited_value
    from by_model
)

{% if is_incremental() %}
{{ replace_rows('final', 'replaced', 'replaced.conversion_id') }}
{% else %}
select * from final
{% endif %}
