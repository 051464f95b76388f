{{ config(
    materialized='incremental',
    unique_key='email_event_id',
    incremental_strategy='delete+insert',
    pre_hook="{{ ensure_loaded_at_index(source('sendgrid', 'sendgrid_events')) }}",
    post_hook="{{ analyze_if_rebuilt('_loaded_at') }}",
    indexes=[{'columns': ['email_event_id'], 'unique': True}, {'columns': ['_loaded_at']}, {'columns': ['email']}],
) }}
{#- A table, not a view: parsing the jsonb payload is the cost, paid once per event.
    Incremental: events are immutable and keyed by their event id, so a run stages the raw rows
    loaded after the newest load already staged; nothing else can have changed. -#}
with source as (
    select * from {{ source('sendgrid', 'sendgrid_events') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ newest_loaded_at() }}
    {%- endif %}
),

final as (
    select
        natural_key as email_event_id,
        payload ->> 'event' as event_type,
        event_time as occurred_at,
        nullif(lower(trim(payload ->> 'email')), '') as email,
        split_part(payload ->> 'sg_message_id', '.', 1) as message_id,
        -- `category` is a string for one category and an array for several: keep the first
        case jsonb_typeof(payload -> 'category')
            when 'array' then payload -> 'category' ->> 0
            else payload ->> 'category'
        end as category,
        payload ->> 'url' as clicked_url,
        -- the simulator's newsletters send their issue as the unique argument campaign_id
        payload ->> 'campaign_id' as campaign_id,
        payload ->> 'reason' as reason,
        _loaded_at
    from source
)

select * from final
