{{ config(
    materialized='incremental',
    unique_key='message_id',
    incremental_strategy='delete+insert',
    pre_hook="{{ ensure_loaded_at_index(source('segment', 'segment_events')) }}",
    post_hook="{{ analyze_if_rebuilt('_loaded_at') }}",
    indexes=[{'columns': ['message_id'], 'unique': True}, {'columns': ['_loaded_at']}],
) }}
{#- A table, not a view: parsing the jsonb payload is the cost, paid once per event.
    Incremental: events are immutable and keyed by messageId, so a run stages the raw rows
    loaded after the newest load already staged; nothing else can have changed. -#}
with source as (
    select * from {{ source('segment', 'segment_events') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ newest_loaded_at() }}
    {%- endif %}
),

final as (
    select
        natural_key as message_id,
        payload ->> 'type' as event_type,
        payload ->> 'event' as track_event_name,
        event_time as occurred_at,
        payload ->> 'anonymousId' as anonymous_id,
        payload ->> 'userId' as user_id,
        payload ->> 'previousId' as previous_id,
        payload ->> 'groupId' as group_id,
        nullif(lower(trim(payload -> 'traits' ->> 'email')), '') as traits_email,
        coalesce(payload -> 'context' -> 'page' ->> 'path', payload -> 'properties' ->> 'path') as page_path,
        payload -> 'context' -> 'page' ->> 'referrer' as page_referrer,
        lower(payload -> 'context' -> 'campaign' ->> 'source') as utm_source,
        lower(payload -> 'context' -> 'campaign' ->> 'medium') as utm_medium,
        payload -> 'context' -> 'campaign' ->> 'name' as utm_campaign,
        payload -> 'context' ->> 'userAgent' as user_agent,
        (payload -> 'context' -> 'consent' -> 'categoryPreferences' ->> 'analytics')::boolean as consent_analytics,
        (payload -> 'context' -> 'consent' -> 'categoryPreferences' ->> 'marketing')::boolean as consent_marketing,
        (payload -> 'properties' ->> 'revenue')::numeric as revenue,
        upper(nullif(payload -> 'properties' ->> 'currency', '')) as currency,
        payload -> 'properties' ->> 'order_id' as order_id,
        payload -> 'properties' ->> 'list_id' as list_id,
        _loaded_at
    from source
)

select * from final
