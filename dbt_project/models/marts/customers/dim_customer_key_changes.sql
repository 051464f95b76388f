{{ config(materialized='view') }}
{#- The customer-key change map for analysts: which key a customer had before and has now, from
    the identity snapshot (int_identity_key_changes), without the identifiers that moved. -#}
with changes as (
    select * from {{ ref('int_identity_key_changes') }}
),

final as (
    select
        old_customer_key,
        new_customer_key,
        min(changed_at) as changed_at,
        count(*) as identifiers_moved
    from changes
    group by old_customer_key, new_customer_key
)

select * from final
