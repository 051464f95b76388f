{{ config(
    materialized='table',
    indexes=[{'columns': ['customer_key', 'purpose'], 'unique': True}],
) }}
{#- Each customer's consent per purpose, decided by the latest signal of any source.
    Method and grain: its docs block in _customers__docs.md. -#}
with signals as (
    select * from {{ ref('int_consent_signals') }}
),

identifiers as (
    select * from {{ ref('int_identifiers_mapped') }}
),

purposes as (
    select purpose from (values ('analytics'), ('marketing')) as purposes (purpose)
),

customers as (
    select distinct customer_key from identifiers where customer_key is not null
),

ranked as (
    select
        signals.*,
        count(*) over (partition by customer_key, purpose) as signals,
        row_number() over (
            partition by customer_key, purpose
            order by signal_at desc, granted asc, source, source_record_id, signal_type
        ) as recency_rank
    from signals
),

latest as (
    select * from ranked where recency_rank = 1
),

final as (
    select
        customers.customer_key,
        purposes.purpose,
        case
            when latest.granted then 'granted'
            when not latest.granted then 'refused'
            else 'unknown'
        end as consent_state,
        latest.granted as is_granted,
        latest.signal_at as decided_at,
        latest.source as decided_by_source,
        latest.signal_type as decided_by_signal_type,
        latest.signal_id as decided_by_signal_id,
        coalesce(latest.signals, 0) as signals
    from customers
    cross join purposes
    left join latest
        on latest.customer_key = customers.customer_key and latest.purpose = purposes.purpose
)

select * from final
