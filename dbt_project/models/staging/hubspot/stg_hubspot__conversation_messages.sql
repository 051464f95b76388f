{{ hubspot_staging_config('hubspot_conversation_messages', 'message_id', 'thread_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_conversation_messages', 'message_id') }}
),

final as (
    select
        object_id as message_id,
        payload ->> 'conversationsThreadId' as thread_id,
        payload ->> 'type' as message_type,
        lower(payload ->> 'direction') as direction,
        -- who wrote it, by the actor id's prefix (V- visitor, A- agent, E- email address,
        -- S- HubSpot itself, I- an integration, L- a customer agent bot)
        case left(payload -> 'senders' -> 0 ->> 'actorId', 2)
            when 'V-' then 'visitor'
            when 'A-' then 'agent'
            when 'E-' then 'email'
            when 'S-' then 'system'
            when 'I-' then 'integration'
            when 'L-' then 'bot'
        end as sender_type,
        payload ->> 'channelId' as channel_id,
        {{ conversation_channel("payload ->> 'channelId'") }} as channel,
        (payload ->> 'createdAt')::timestamptz as created_at,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
