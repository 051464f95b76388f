{{ config(indexes=[{'columns': ['thread_id'], 'unique': True}, {'columns': ['customer_key']}]) }}
{#- One row per conversations inbox thread (live chat, Messenger, email, WhatsApp), with its
    first response and resolution times. Method and grain: its docs block in _support__docs.md. -#}
with threads as (
    select * from {{ ref('stg_hubspot__conversation_threads') }}
    -- deleted threads and spam are no conversation with a customer
    where is_archived is not true and not is_spam
),

messages as (
    -- what people wrote: not the widget's greeting, status changes or internal comments
    select * from {{ ref('stg_hubspot__conversation_messages') }}
    where message_type = 'MESSAGE' and is_archived is not true
),

identifiers as not materialized (
    select * from {{ ref('int_identifiers_mapped') }}
    where identifier_type = 'hubspot_contact'
),

counted as (
    select
        thread_id,
        min(created_at) filter (where direction = 'incoming') as first_incoming_at,
        count(*) filter (where direction = 'incoming') as messages_in,
        count(*) filter (where direction = 'outgoing' and sender_type = 'agent') as messages_out
    from messages
    group by thread_id
),

opened as (
    select threads.*, coalesce(counted.first_incoming_at, threads.created_at) as opened_at,
           coalesce(counted.messages_in, 0) as messages_in,
           coalesce(counted.messages_out, 0) as messages_out
    from threads
    left join counted using (thread_id)
),

first_responses as (
    -- an agent's first message after the customer's first
    select opened.thread_id, min(messages.created_at) as first_response_at
    from opened
    inner join messages
        on messages.thread_id = opened.thread_id
        and messages.direction = 'outgoing'
        and messages.sender_type = 'agent'
        and messages.created_at >= opened.opened_at
    group by opened.thread_id
),

final as (
    select
        o.thread_id,
        i.customer_key,
        o.channel,
        o.opened_at,
        r.first_response_at,
        extract(epoch from r.first_response_at - o.opened_at) / 60.0 as first_response_minutes,
        case when o.status = 'CLOSED' then o.closed_at end as closed_at,
        case when o.status = 'CLOSED'
             then extract(epoch from o.closed_at - o.opened_at) / 3600.0 end as resolution_hours,
        o.messages_in::integer as messages_in,
        o.messages_out::integer as messages_out,
        r.first_response_at is not null as is_answered,
        lower(o.status) as status
    from opened as o
    left join first_responses as r using (thread_id)
    left join identifiers as i on i.identifier = o.contact_id
)

select * from final
