{{ config(materialized='view') }}
{#- Who each customer is: the direct identifiers kept out of the analyst's marts. A view, so an
    erasure or a changed contact shows at once and a build costs nothing; the reporter reads it
    for the few customers a report names (the at-risk list). -#}
with identifiers as (
    select * from {{ ref('int_identifiers_mapped') }}
    where customer_key is not null
),

located as (
    select * from {{ ref('int_customers_located') }}
),

contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

companies as (
    select * from {{ ref('stg_hubspot__companies') }}
),

customers as (
    select
        customer_key,
        min(email) as email,
        min(identifier) filter (where identifier_type = 'hubspot_contact') as hubspot_contact_id
    from identifiers
    group by customer_key
),

final as (
    select
        customers.customer_key,
        customers.email,
        customers.hubspot_contact_id,
        nullif(trim(concat_ws(' ', contacts.first_name, contacts.last_name)), '') as display_name,
        companies.company_name
    from customers
    left join located using (customer_key)
    left join contacts on contacts.contact_id = located.contact_id
    left join companies on companies.company_id = contacts.company_id
)

select * from final
