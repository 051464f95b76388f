{{ config(materialized='table', indexes=[{'columns': ['message_id'], 'unique': True}]) }}
{#- Each Segment event with the customer its userId resolves to, the customer its device
    (anonymousId) resolves to, and the one to use: the userId's first. The one place web
    events meet the identity map. -#}
with segment_events as (
    select * from {{ ref('stg_segment__events') }}
),

identifiers as (
    select * from {{ ref('int_identifiers_mapped') }}
),

final as (
    select
        e.message_id,
        by_user.customer_key as user_customer_key,
        by_device.customer_key as device_customer_key,
        coalesce(by_user.customer_key, by_device.customer_key) as customer_key
    from segment_events as e
    left join identifiers as by_user
        on by_user.identifier_type = 'segment_user' and by_user.identifier = e.user_id
    left join identifiers as by_device
        on by_device.identifier_type = 'segment_anonymous' and by_device.identifier = e.anonymous_id
)

select * from final
