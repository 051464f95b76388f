{{ config(
    materialized='incremental',
    unique_key='message_id',
    incremental_strategy='delete+insert',
    indexes=[
        {'columns': ['message_id'], 'unique': True},
        {'columns': ['user_id']},
        {'columns': ['anonymous_id']},
        {'columns': ['visitor_id', 'occurred_at']},
        {'columns': ['customer_key']},
        {'columns': ['_updated_at']},
    ],
    post_hook=["{{ analyze_if_rebuilt('_updated_at') }}", "{{ save_watermark() }}"],
) }}
{#- Each Segment event with its customer (userId first, else device) and its visitor: the one
    place web events meet the identity map.
    Method, grain and incremental logic: its docs block in _int_events__docs.md. -#}
with
{%- if is_incremental() %}
changed_identifiers as (
    select identifier_type, identifier
    from {{ ref('int_identifiers_mapped') }}
    where _key_changed_at > {{ watermark() }}
      and identifier_type in ('segment_user', 'segment_anonymous')
),

stored as not materialized (
    select * from {{ this }}
),
{%- endif %}

segment_events as (
    select * from {{ ref('stg_segment__events') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ watermark() }}
    union all
    select * from {{ ref('stg_segment__events') }}
    where _loaded_at <= {{ watermark() }}
      and message_id in (
          select message_id from stored
          where user_id in (select identifier from changed_identifiers where identifier_type = 'segment_user')
          union
          select message_id from stored
          where anonymous_id in (select identifier from changed_identifiers where identifier_type = 'segment_anonymous')
      )
    {%- endif %}
),

identifiers as not materialized (
    select * from {{ ref('int_identifiers_mapped') }}
),

identified as (
    select
        e.message_id,
        e.occurred_at,
        e.event_type,
        e.user_id,
        e.anonymous_id,
        coalesce(e.anonymous_id, 'user:' || e.user_id) as visitor_id,
        by_user.customer_key as user_customer_key,
        by_device.customer_key as device_customer_key,
        coalesce(by_user.customer_key, by_device.customer_key) as customer_key
    from segment_events as e
    left join identifiers as by_user
        on by_user.identifier_type = 'segment_user' and by_user.identifier = e.user_id
    left join identifiers as by_device
        on by_device.identifier_type = 'segment_anonymous' and by_device.identifier = e.anonymous_id
),

final as (
    select identified.*, now() as _updated_at
    from identified
    {%- if is_incremental() %}
    left join stored using (message_id)
    where stored.message_id is null
       or stored.user_customer_key is distinct from identified.user_customer_key
       or stored.device_customer_key is distinct from identified.device_customer_key
    {%- endif %}
)

select * from final
