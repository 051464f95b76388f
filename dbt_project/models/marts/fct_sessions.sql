{#- Web sessions: a visitor's page and track events (identify, alias and group carry no
    activity), split when var session_timeout_minutes (default 30) minutes or more pass without an
    event. A visitor is the Segment anonymous_id (the userId when an event has none). The
    session's customer is resolved through the identity map by the first userId seen in it, then
    by its anonymous_id. Its channel comes from the landing event (the first page view, else the
    first event) through the channel_grouping seed, the one place those rules live. -#}
{%- set timeout_minutes = var('session_timeout_minutes') | int -%}
{%- if timeout_minutes <= 0 -%}
    {{ exceptions.raise_compiler_error("var session_timeout_minutes must be a positive number of minutes, got " ~ var('session_timeout_minutes')) }}
{%- endif -%}

with segment_events as (
    select * from {{ ref('stg_segment__events') }}
),

identified as (
    select * from {{ ref('int_segment_events_identified') }}
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
),

activity as (
    select
        e.message_id,
        e.event_type,
        e.occurred_at,
        coalesce(e.anonymous_id, 'user:' || e.user_id) as visitor_id,
        e.anonymous_id,
        e.page_path,
        e.page_referrer,
        e.utm_source,
        e.utm_medium,
        e.utm_campaign,
        i.user_customer_key,
        i.device_customer_key,
        p.message_id is not null as is_conversion
    from segment_events as e
    left join identified as i on i.message_id = e.message_id
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

sessions as (
    select
        visitor_id,
        session_number,
        min(anonymous_id) as anonymous_id,
        (array_agg(message_id order by occurred_at, message_id))[1] as first_message_id,
        (array_agg(user_customer_key order by occurred_at, message_id)
            filter (where user_customer_key is not null))[1] as user_customer_key,
        min(device_customer_key) as device_customer_key,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) filter (where event_type = 'page') as page_views,
        count(*) as events,
        bool_or(is_conversion) as has_conversion
    from numbered
    group by visitor_id, session_number
),

landings as (
    select distinct on (visitor_id, session_number)
        visitor_id,
        session_number,
        page_path as landing_path,
        nullif(page_referrer, '') as landing_referrer,
        lower(coalesce(
            substring(page_referrer from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)'),
            nullif(page_referrer, '')
        )) as referrer_host,
        nullif(utm_source, '') as utm_source,
        nullif(utm_medium, '') as utm_medium,
        nullif(utm_campaign, '') as utm_campaign
    from numbered
    order by visitor_id, session_number, event_type <> 'page', occurred_at, message_id
),

grouped as (
    select
        l.*,
        rule.session_channel
    from landings as l
    left join lateral (
        select g.session_channel
        from channel_grouping as g
        where (g.utm_medium is null or l.utm_medium ~* g.utm_medium)
          and (g.utm_source is null or l.utm_source ~* g.utm_source)
          and (g.referrer_host is null or l.referrer_host ~* g.referrer_host)
        order by g.priority
        limit 1
    ) as rule on true
),

final as (
    select
        md5('segment:' || s.visitor_id || ':' || s.first_message_id) as session_key,
        coalesce(s.user_customer_key, s.device_customer_key) as customer_key,
        s.anonymous_id,
        s.session_number,
        s.started_at,
        s.ended_at,
        extract(epoch from s.ended_at - s.started_at) as duration_seconds,
        s.page_views,
        s.events,
        g.landing_path,
        g.landing_referrer,
        g.session_channel,
        g.utm_source,
        g.utm_medium,
        g.utm_campaign,
        s.page_views >= 2
            or s.ended_at - s.started_at >= interval '10 seconds'
            or s.has_conversion as is_engaged,
        s.has_conversion
    from sessions as s
    inner join grouped as g
        on g.visitor_id = s.visitor_id and g.session_number = s.session_number
)

select * from final
