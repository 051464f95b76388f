{{ config(
    materialized='incremental',
    unique_key='conversion_id',
    incremental_strategy='replace',
    replace_key='customer_key',
    on_schema_change='ignore',
    indexes=[{'columns': ['conversion_id'], 'unique': True}, {'columns': ['customer_key', 'conversion_number']}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- One row per conversion: every purchase touchpoint of a known customer.
    Method, grain and incremental logic: its docs block in _journeys__docs.md. -#}
with
{%- if is_incremental() %}
changed as (
    {{ changed_events() }}
),

customers as (
    {{ purchase_changed_customers('(select conversion_id as touchpoint_id, customer_key from ' ~ this ~ ')') }}
    union
    -- a deal's amount or currency can change while its closed-won event stays as it was
    select customer_key from ({{ revalued_conversions(this) }}) as revalued
),

purchases as (
    select conversion_id as touchpoint_id, customer_key, converted_at as occurred_at,
           source, channel, source_event_id, source_event_type
    from {{ this }}
    where customer_key in (select customer_key from customers)
      -- not exists, not `not in`: an anti-join, where `not in` scans its subquery's rows for
      -- every row once they pass work_mem
      and not exists (select from changed where changed.event_key = conversion_id)
    union all
    select event_key, customer_key, occurred_at, source, channel, source_event_id, event_type
    from changed
    where touchpoint = 'purchase' and is_touchpoint and not is_removed
      and customer_key in (select customer_key from customers)
),
{%- else %}
purchases as (
    select event_key as touchpoint_id, customer_key, occurred_at, source, channel, source_event_id,
           event_type as source_event_type
    from {{ ref('int_events_classified') }}
    where touchpoint = 'purchase' and is_touchpoint and not is_removed
      and customer_key is not null
),
{%- endif %}

numbered as (
    select
        *,
        row_number() over (partition by customer_key order by occurred_at, touchpoint_id) as conversion_number
    from purchases
),

deals as (
    select 'deal_closed_won:' || deal_id as source_event_id, amount, currency
    from {{ ref('stg_hubspot__deals') }}
),

orders as (
    select message_id as source_event_id, revenue, currency
    from {{ ref('stg_segment__events') }}
),

valued as (
    select
        numbered.*,
        case numbered.source when 'web' then orders.revenue when 'crm' then deals.amount end as conversion_value,
        case numbered.source
            -- an order without a currency: the account's (Segment's spec leaves it optional)
            when 'web' then case when orders.revenue is not null
                                 then coalesce(orders.currency, '{{ var("default_currency") }}') end
            when 'crm' then case when deals.amount is not null then deals.currency end
        end as currency
    from numbered
    left join orders on numbered.source = 'web' and orders.source_event_id = numbered.source_event_id
    left join deals on numbered.source = 'crm' and deals.source_event_id = numbered.source_event_id
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
        source_event_type,
        conversion_value,
        currency
    from valued
)

{% if is_incremental() %}
{{ replace_rows('final', 'customers', 'customers.customer_key') }}
{% else %}
select * from final
{% endif %}
