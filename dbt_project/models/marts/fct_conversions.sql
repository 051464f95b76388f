{#- One row per conversion: every purchase touchpoint of a known customer (a web order
    completed, a CRM new-business deal closed-won). Anonymous purchases cannot be tied to a
    customer's journey and are left out. A customer's first conversion in the warehouse is
    'new', every later one 'repeat' (history before the warehouse's first load is unknown). -#}
with touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

purchases as (
    select *
    from touchpoints
    where touchpoint = 'purchase'
      and customer_key is not null
),

numbered as (
    select
        *,
        row_number() over (partition by customer_key order by occurred_at, touchpoint_id) as conversion_number
    from purchases
),

final as (
    select
        touchpoint_id as conversion_id,
        customer_key,
        occurred_at as converted_at,
        case when conversion_number = 1 then 'new' else 'repeat' end as conversion_type,
        conversion_number,
        source,
        channel,
        source_event_id,
        source_event_type
    from numbered
)

select * from final
