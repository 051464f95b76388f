{{ config(
    materialized='incremental',
    unique_key='message_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    indexes=[{'columns': ['message_id'], 'unique': True}, {'columns': ['sent_at']}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- One row per email message SendGrid was asked to send, and what became of it.
    Method, grain, campaign rule and incremental logic: its docs block in _email__docs.md. -#}
with
{%- if is_incremental() %}
changed_messages as (
    -- a message is re-derived whole when any of its events is new or re-keyed since the watermark
    select staged.message_id
    from ({{ changed_events() }}) as changed
    join {{ ref('stg_sendgrid__events') }} as staged on staged.email_event_id = changed.source_event_id
    where changed.source = 'email'
),
{%- endif %}

events as (
    select * from {{ ref('stg_sendgrid__events') }}
    where message_id is not null and message_id <> ''
    {%- if is_incremental() %}
      and message_id in (select message_id from changed_messages)
    {%- endif %}
),

customers as (
    -- the customer of each event's address, as every other mart resolves it
    select source_event_id as email_event_id, customer_key
    from {{ ref('int_events_classified') }}
    where source = 'email'
      and event_key in (select md5('email:' || email_event_id) from events)
),

ranked as (
    select
        events.*,
        customers.customer_key,
        -- the message's own fields (categories, unique arguments, group) are read from its
        -- processed event, else its dropped event, else its earliest event
        case event_type when 'processed' then 0 when 'dropped' then 1 else 2 end as field_rank
    from events
    left join customers using (email_event_id)
),

messages as (
    select
        message_id,
        -- every event of a message carries the one address it was sent to
        max(customer_key) as customer_key,
        (array_agg(category order by field_rank, occurred_at, email_event_id)
            filter (where category is not null))[1] as category,
        (array_agg(newsletter_issue order by field_rank, occurred_at, email_event_id)
            filter (where newsletter_issue is not null))[1] as newsletter_issue,
        (array_agg(campaign_id order by field_rank, occurred_at, email_event_id)
            filter (where campaign_id is not null))[1] as campaign_id,
        (array_agg(asm_group_id order by field_rank, occurred_at, email_event_id)
            filter (where asm_group_id is not null))[1] as asm_group_id,
        min(occurred_at) filter (where event_type = 'processed') as processed_at,
        min(occurred_at) filter (where event_type = 'dropped') as dropped_at,
        min(occurred_at) filter (where event_type = 'delivered') as delivered_at,
        bool_or(event_type = 'deferred') as is_deferred,
        -- SendGrid's type: 'bounce' (or none, before types existed) a hard bounce; 'blocked'
        -- (the receiving server refused this message, not the address) a soft one
        bool_or(event_type = 'bounce' and coalesce(bounce_type, 'bounce') = 'bounce') as is_hard_bounce,
        bool_or(event_type = 'bounce' and bounce_type <> 'bounce') as is_soft_bounce,
        (array_agg(bounce_classification order by coalesce(bounce_type, 'bounce') = 'bounce' desc, occurred_at, email_event_id)
            filter (where event_type = 'bounce'))[1] as bounce_classification,
        min(occurred_at) filter (where event_type = 'open' and not is_machine_open) as first_opened_at,
        count(*) filter (where event_type = 'open' and not is_machine_open) as opens,
        count(*) filter (where event_type = 'open' and is_machine_open) as machine_opens,
        min(occurred_at) filter (where event_type = 'click') as first_clicked_at,
        count(*) filter (where event_type = 'click') as clicks,
        bool_or(event_type = 'spamreport') as is_spam_report,
        bool_or(event_type in ('unsubscribe', 'group_unsubscribe')) as is_unsubscribed
    from ranked
    group by message_id
),

message_categories as (
    -- apart: array_agg of arrays makes a two-dimensional array, whose [1] is null
    select distinct on (message_id) message_id, categories
    from ranked
    where categories is not null
    order by message_id, field_rank, occurred_at, email_event_id
),

final as (
    select
        message_id,
        customer_key,
        coalesce({{ email_campaign() }}, 'uncategorised') as campaign,
        coalesce(category, 'uncategorised') as category,
        message_categories.categories,
        newsletter_issue,
        case when asm_group_id is not null then 'marketing' else 'transactional' end as message_kind,
        asm_group_id,
        coalesce(processed_at, dropped_at) as sent_at,
        delivered_at,
        delivered_at is not null as is_delivered,
        case when is_hard_bounce then 'hard' when is_soft_bounce then 'soft' end as bounce_type,
        bounce_classification,
        dropped_at is not null as is_dropped,
        is_deferred,
        first_opened_at,
        opens,
        machine_opens,
        first_opened_at is not null as is_opened,
        first_clicked_at,
        clicks,
        first_clicked_at is not null as is_clicked,
        is_spam_report,
        is_unsubscribed
    from messages
    left join message_categories using (message_id)
    -- a message is sent when SendGrid processed or dropped it: engagement whose send is not in
    -- the warehouse (before its history) makes no row
    where coalesce(processed_at, dropped_at) is not null
)

select * from final
