{{ config(materialized='view') }}
{#- Merges across runs: identifiers whose customer_key changed between two builds (two known
    customers turned out to be one person), from the identity_assignments snapshot. -#}
with history as (
    select * from {{ ref('identity_assignments') }}
),

changes as (
    select
        identifier_node,
        customer_key as new_customer_key,
        lag(customer_key) over (partition by identifier_node order by dbt_valid_from) as old_customer_key,
        dbt_valid_from as changed_at
    from history
),

final as (
    select identifier_node, old_customer_key, new_customer_key, changed_at
    from changes
    where old_customer_key is distinct from new_customer_key and old_customer_key is not null
)

select * from final
