{{ config(
    materialized='incremental',
    unique_key='customer_key',
    incremental_strategy='replace',
    replace_key='customer_key',
    on_schema_change='ignore',
    indexes=[{'columns': ['customer_key'], 'unique': True}, {'columns': ['_updated_at']}],
    post_hook=["{{ analyze_if_rebuilt('_updated_at') }}", "{{ save_watermark() }}"],
) }}
{#- Each customer's primary HubSpot contact and its region: the one place that choice is made.
    Method, grain and incremental logic: its docs block in _int_identity__docs.md. -#}
with
{%- if is_incremental() %}
affected as (
    {{ remapped_customers() }}
    union
    select i.customer_key
    from {{ ref('int_identifiers_mapped') }} as i
    where i.identifier_type = 'hubspot_contact' and i.customer_key is not null
      and i.identifier in (
          select contact_id from {{ ref('stg_hubspot__contacts') }} where _loaded_at > {{ watermark() }}
      )
),
{%- endif %}

identifiers as (
    select * from {{ ref('int_identifiers_mapped') }}
    where customer_key is not null
    {%- if is_incremental() %} and customer_key in (select customer_key from affected){% endif %}
),

contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

regions as (
    select * from {{ ref('regions') }}
),

customers as (
    select distinct customer_key from identifiers
),

primary_contacts as (
    select distinct on (identifiers.customer_key)
        identifiers.customer_key,
        contacts.contact_id,
        contacts.country
    from identifiers
    join contacts on contacts.contact_id = identifiers.identifier
    where identifiers.identifier_type = 'hubspot_contact'
    order by identifiers.customer_key, contacts.created_at, contacts.contact_id
),

located as (
    select
        customers.customer_key,
        primary_contacts.contact_id,
        primary_contacts.country,
        coalesce(regions.region, 'Unknown') as region
    from customers
    left join primary_contacts using (customer_key)
    left join regions on regions.country = upper(primary_contacts.country)
),

{% if is_incremental() %}
final as (
    select
        located.*,
        case when stored.customer_key is not null
                  and (stored.contact_id, stored.country, stored.region)
                      is not distinct from (located.contact_id, located.country, located.region)
             then stored._updated_at else now() end as _updated_at
    from located
    left join {{ this }} as stored using (customer_key)
)

{{ replace_rows('final', 'affected', 'affected.customer_key') }}
{% else %}
final as (
    select located.*, now() as _updated_at from located
)

select * from final
{% endif %}
