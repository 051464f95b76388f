{{ config(
    materialized='incremental',
    unique_key='identifier_node',
    incremental_strategy='replace',
    replace_key='identifier_node',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['identifier_type', 'identifier'], 'unique': True},
        {'columns': ['identifier_node'], 'unique': True},
        {'columns': ['component']},
        {'columns': ['customer_key']},
        {'columns': ['_updated_at']},
        {'columns': ['_key_changed_at']},
    ],
    post_hook=["{{ analyze_if_rebuilt('_updated_at, _key_changed_at') }}", "{{ save_watermark() }}"],
) }}
{#- Every identifier and the customer it resolves to: a hash of its component's earliest-seen
    person identifier.
    Method, grain and incremental logic: its docs block in _int_identity__docs.md. -#}
with
{%- if is_incremental() %}
stored as not materialized (
    select * from {{ this }}
),

changed_nodes as (
    select node from {{ ref('int_identity_components') }} where _updated_at > {{ watermark() }}
    union
    select node from {{ ref('int_identity_nodes') }} where _updated_at > {{ watermark() }}
),

affected_components as (
    select component from {{ ref('int_identity_components') }} where node in (select node from changed_nodes)
    union
    select component from stored where identifier_node in (select node from changed_nodes)
),
{%- endif %}

components as (
    select * from {{ ref('int_identity_components') }}
    {%- if is_incremental() %}
    where component in (select component from affected_components)
    {%- endif %}
),

nodes as (
    select * from {{ ref('int_identity_nodes') }} where is_active
),

members as (
    select nodes.*, components.component, components.component_size, components.is_over_cap
    from nodes
    join components using (node)
),

anchors as (
    select distinct on (component)
        component,
        node as anchor_node
    from members
    where identifier_type in ('email', 'hubspot_contact', 'segment_user') and not is_excluded
    order by component, first_seen_at, node
),

emails as (
    select distinct on (component) component, identifier as email
    from members
    where identifier_type = 'email' and not is_excluded
    order by component, first_seen_at, identifier
),

mapped as (
    select
        members.identifier_type || ':' || members.identifier as identifier_node,
        members.identifier_type,
        members.identifier,
        emails.email,
        case when anchors.anchor_node is not null and not members.is_excluded
             then {{ keyed_hash("'customer:' || anchors.anchor_node") }} end as customer_key,
        anchors.anchor_node,
        members.component_size,
        members.is_over_cap,
        members.first_seen_at,
        members.component
    from members
    left join anchors using (component)
    left join emails using (component)
),

{% if is_incremental() %}
{#- a table built before _key_changed_at existed: its rows' key clock is their _updated_at
    (on_schema_change adds the column once this select has run) -#}
{%- set stored_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
{%- set stored_key_clock = '_key_changed_at' if '_key_changed_at' in stored_columns else '_updated_at' %}
final as (
    select
        mapped.*,
        case when stored.customer_key is not null and stored.customer_key is distinct from mapped.customer_key
             then array_append(stored.former_customer_keys, stored.customer_key)
             else coalesce(stored.former_customer_keys, '{}') end as former_customer_keys,
        case when stored.identifier_node is not null
                  and (stored.email, stored.customer_key, stored.anchor_node, stored.component_size,
                       stored.is_over_cap, stored.first_seen_at, stored.component)
                      is not distinct from
                      (mapped.email, mapped.customer_key, mapped.anchor_node, mapped.component_size,
                       mapped.is_over_cap, mapped.first_seen_at, mapped.component)
             then stored._updated_at else now() end as _updated_at,
        -- only a new identifier or another customer_key: what re-keys its events
        case when stored.identifier_node is not null
                  and stored.customer_key is not distinct from mapped.customer_key
             then stored.{{ stored_key_clock }} else now() end as _key_changed_at
    from mapped
    left join stored using (identifier_node)
),

replaced as (
    select identifier_node from stored where component in (select component from affected_components)
    union
    select node from changed_nodes
)

{{ replace_rows('final', 'replaced', 'replaced.identifier_node') }}
{% else %}
final as (
    select mapped.*, '{}'::text[] as former_customer_keys, now() as _updated_at,
           now() as _key_changed_at
    from mapped
)

select * from final
{% endif %}
