{{ config(
    materialized='incremental',
    unique_key='email_event_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook="{{ ensure_loaded_at_index(source('sendgrid', 'sendgrid_events')) }}",
    post_hook="{{ analyze_if_rebuilt('_loaded_at') }}",
    indexes=[{'columns': ['email_event_id'], 'unique': True}, {'columns': ['_loaded_at']}, {'columns': ['email']},
             {'columns': ['message_id']}],
) }}
{#- A table, not a view: parsing the jsonb payload is the cost, paid once per event.
    Incremental: events are immutable and keyed by their event id, so a run stages the raw rows
    loaded after the newest load already staged; nothing else can have changed.
    on_schema_change 'fail': a column added here is empty in the rows staged before, so a
    warehouse built before it stops with dbt's schema message until
    `touchpoint dbt build --full-refresh` restages the history (README, "Upgrading").
    Not staged: `useragent` and `ip` (a reader's device and address), nor unique arguments
    other than the campaign's (order ids...): no model needs them. -#}
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
        -- `category` is a string for one category and an array for several: the first is the kind
        case jsonb_typeof(payload -> 'category')
            when 'array' then payload -> 'category' ->> 0
            else payload ->> 'category'
        end as category,
        case
            when jsonb_typeof(payload -> 'category') = 'array'
                then array(select jsonb_array_elements_text(payload -> 'category'))
            when payload ->> 'category' is not null then array[payload ->> 'category']
        end as categories,
        -- unique arguments (custom args) arrive as top-level keys of the event
        nullif(payload ->> 'newsletter_issue', '') as newsletter_issue,
        nullif(payload ->> 'campaign_id', '') as campaign_id,
        -- casts guarded: a malformed value is left null rather than failing the build
        case when payload ->> 'asm_group_id' ~ '^[0-9]{1,9}$' then (payload ->> 'asm_group_id')::integer end
            as asm_group_id,
        case when payload ->> 'event' = 'bounce' then payload ->> 'type' end as bounce_type,
        case when payload ->> 'event' = 'bounce' then payload ->> 'bounce_classification' end as bounce_classification,
        case when payload ->> 'event' = 'open' then coalesce(lower(payload ->> 'sg_machine_open') = 'true', false) end
            as is_machine_open,
        payload ->> 'url' as clicked_url,
        payload ->> 'reason' as reason,
        _loaded_at
    from source
)

select * from final
