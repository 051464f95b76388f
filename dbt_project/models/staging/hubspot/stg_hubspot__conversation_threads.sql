{{ hubspot_staging_config('hubspot_conversation_threads', 'thread_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_conversation_threads', 'thread_id') }}
),

final as (
    select
        object_id as thread_id,
        nullif(payload ->> 'associatedContactId', '') as contact_id,
        payload ->> 'originalChannelId' as channel_id,
        {{ conversation_channel("payload ->> 'originalChannelId'") }} as channel,
        payload ->> 'inboxId' as inbox_id,
        upper(payload ->> 'status') as status,
        (payload ->> 'createdAt')::timestamptz as created_at,
        (payload ->> 'closedAt')::timestamptz as closed_at,
        (payload ->> 'latestMessageTimestamp')::timestamptz as latest_message_at,
        coalesce((payload ->> 'spam')::boolean, false) as is_spam,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
