with source as (
    select * from {{ source('sendgrid', 'sendgrid_events') }}
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
        payload ->> 'reason' as reason,
        _loaded_at
    from source
)

select * from final
