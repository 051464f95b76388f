{{ config(
    materialized='incremental',
    unique_key='session_key',
    incremental_strategy='replace',
    replace_key='visitor_key',
    replace_from_key='session_number',
    on_schema_change='ignore',
    indexes=[{'columns': ['session_key'], 'unique': True}, {'columns': ['visitor_key', 'session_number']}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- Web sessions: a visitor's page and track events, split after session_timeout_minutes idle.
    Method, grain and incremental logic: its docs block in _journeys__docs.md. The visitor is
    stored as a keyed pseudonym (visitor_key), never as the device or user id it stands for. -#}
{%- set timeout_minutes = var('session_timeout_minutes') | int -%}
{%- if timeout_minutes <= 0 -%}
    {{ exceptions.raise_compiler_error("var session_timeout_minutes must be a positive number of minutes, got " ~ var('session_timeout_minutes')) }}
{%- endif -%}

with
{%- if is_incremental() %}
visitors as (
    -- visitors with changed events, re-derived from their earliest new one (or entirely)
    select
        i.visitor_id,
        {{ keyed_hash("'visitor:' || i.visitor_id") }} as visitor_key,
        min(case when e._loaded_at > {{ watermark() }} then i.occurred_at else '-infinity' end) as changed_from
    from {{ ref('int_segment_events_identified') }} as i
    join {{ ref('stg_segment__events') }} as e using (message_id)
    where i._updated_at > {{ watermark() }} and i.event_type in ('page', 'track')
    group by i.visitor_id
),

restarts as (
    select visitors.visitor_id, visitors.visitor_key, restart.session_number, restart.started_at
    from visitors
    left join lateral (
        select s.session_number, s.started_at
        from {{ this }} as s
        where s.visitor_key = visitors.visitor_key and s.started_at < visitors.changed_from
        order by s.session_number desc
        limit 1
    ) as restart on true
),
{%- endif %}

identified as (
    select
        i.*,
        {%- if is_incremental() %}
        coalesce(restarts.session_number - 1, 0) as session_offset
        {%- else %}
        0 as session_offset
        {%- endif %}
    from {{ ref('int_segment_events_identified') }} as i
    {%- if is_incremental() %}
    join restarts on restarts.visitor_id = i.visitor_id
    where restarts.session_number is null or i.occurred_at >= restarts.started_at
    {%- endif %}
),

segment_events as (
    select * from {{ ref('stg_segment__events') }}
    {%- if is_incremental() %}
    where message_id in (select message_id from identified)
    {%- endif %}
),

touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

channel_grouping as (
    select * from {{ ref('channel_grouping') }}
),

purchase_events as (
    -- what a conversion is lives in the touchpoint taxonomy: a web purchase touchpoint
    select source_event_id as message_id
    from touchpoints
    where source = 'web' and touchpoint = 'purchase'
    {%- if is_incremental() %}
      and touchpoint_id in (select md5('web:' || message_id) from identified)
    {%- endif %}
),

activity as (
    select
        e.message_id,
        e.event_type,
        e.occurred_at,
        i.visitor_id,
        i.session_offset,
        e.page_path,
        e.page_referrer,
        e.utm_source,
        e.utm_medium,
        e.utm_campaign,
        -- a sign-up is Segment's spec event 'Signed Up', named as the taxonomy normalises it
        e.event_type = 'track'
            and regexp_replace(lower(trim(e.track_event_name)), '[^a-z0-9]+', '_', 'g') = 'signed_up' as is_sign_up,
        i.user_customer_key,
        i.device_customer_key,
        p.message_id is not null as is_conversion
    from segment_events as e
    inner join identified as i on i.message_id = e.message_id
    left join purchase_events as p on p.message_id = e.message_id
    where e.event_type in ('page', 'track')
),

gaps as (
    select
        *,
        occurred_at - lag(occurred_at) over by_visitor as idle_before
    from activity
    window by_visitor as (partition by visitor_id order by occurred_at, message_id)
),

numbered as (
    select
        *,
        count(*) filter (
            where idle_before is null or idle_before >= interval '{{ timeout_minutes }} minutes'
        ) over (
            partition by visitor_id order by occurred_at, message_id rows unbounded preceding
        ) as session_number
    from gaps
),

landed as (
    -- every event carries its session's landing event: the first page view, else the first event
    select
        *,
        first_value(message_id) over by_landing as landing_message_id
    from numbered
    window by_landing as (
        partition by visitor_id, session_number
        order by event_type <> 'page', occurred_at, message_id
        rows between unbounded preceding and unbounded following
    )
),

sessions as (
    select
        visitor_id,
        session_number + min(session_offset) as session_number,
        (array_agg(message_id order by occurred_at, message_id))[1] as first_message_id,
        (array_agg(user_customer_key order by occurred_at, message_id)
            filter (where user_customer_key is not null))[1] as user_customer_key,
        min(device_customer_key) as device_customer_key,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) filter (where event_type = 'page') as page_views,
        count(*) as events,
        bool_or(is_conversion) as has_conversion,
        bool_or(is_sign_up) as has_sign_up,
        min(page_path) filter (where message_id = landing_message_id) as landing_path,
        min(nullif(page_referrer, '')) filter (where message_id = landing_message_id) as landing_referrer,
        min({{ url_host('page_referrer') }}) filter (where message_id = landing_message_id) as referrer_host,
        min(nullif(utm_source, '')) filter (where message_id = landing_message_id) as utm_source,
        min(nullif(utm_medium, '')) filter (where message_id = landing_message_id) as utm_medium,
        min(nullif(utm_campaign, '')) filter (where message_id = landing_message_id) as utm_campaign
    from landed
    group by visitor_id, session_number
),

grouped as (
    select
        sessions.*,
        rule.session_channel
    from sessions
    left join lateral (
        select g.session_channel
        from channel_grouping as g
        where (g.utm_medium is null or sessions.utm_medium ~* g.utm_medium)
          and (g.utm_source is null or sessions.utm_source ~* g.utm_source)
          and (g.referrer_host is null or sessions.referrer_host ~* g.referrer_host)
        order by g.priority
        limit 1
    ) as rule on true
),

final as (
    select
        {{ keyed_hash("'segment:' || s.visitor_id || ':' || s.first_message_id") }} as session_key,
        coalesce(s.user_customer_key, s.device_customer_key) as customer_key,
        {{ keyed_hash("'visitor:' || s.visitor_id") }} as visitor_key,
        s.session_number,
        s.started_at,
        s.ended_at,
        extract(epoch from s.ended_at - s.started_at) as duration_seconds,
        s.page_views,
        s.events,
        s.landing_path,
        s.landing_referrer,
        s.session_channel,
        s.utm_source,
        s.utm_medium,
        s.utm_campaign,
        s.page_views >= 2
            or s.ended_at - s.started_at >= interval '10 seconds'
            or s.has_conversion as is_engaged,
        s.has_conversion,
        s.has_sign_up
    from grouped as s
)

{% if is_incremental() %}
{{ replace_rows('final', 'restarts', 'restarts.visitor_key', 'restarts.session_number') }}
{% else %}
select * from final
{% endif %}
