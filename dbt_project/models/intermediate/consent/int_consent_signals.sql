{{ config(
    materialized='incremental',
    unique_key='signal_id',
    incremental_strategy='replace',
    replace_key='signal_group',
    on_schema_change='ignore',
    indexes=[
        {'columns': ['signal_id'], 'unique': True},
        {'columns': ['signal_group']},
        {'columns': ['customer_key', 'purpose']},
    ],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- Every consent signal a source gave about a customer, per purpose (analytics, marketing).
    Method, grain and incremental logic: its docs block in _int_consent__docs.md. -#}
{%- set consent_basis = 'Freely given consent from contact' %}
with
{%- if is_incremental() %}
changed_contacts as (
    select contact_id from {{ ref('stg_hubspot__contacts') }} where _loaded_at > {{ watermark() }}
    union
    select object_id from {{ source('hubspot', 'hubspot_contacts') }} where _loaded_at > {{ watermark() }}
    union
    select identifier from {{ ref('int_identifiers_mapped') }}
    where identifier_type = 'hubspot_contact' and _updated_at > {{ watermark() }}
),

changed_addresses as (
    select email from {{ ref('stg_sendgrid__events') }}
    where _loaded_at > {{ watermark() }}
      and event_type in ('unsubscribe', 'group_unsubscribe', 'group_resubscribe')
      and email is not null
    union
    select identifier from {{ ref('int_identifiers_mapped') }}
    where identifier_type = 'email' and _updated_at > {{ watermark() }}
),

changed_devices as (
    select visitor_id from {{ ref('int_segment_events_identified') }} where _updated_at > {{ watermark() }}
),

affected_groups as (
    select 'hubspot:' || contact_id as signal_group from changed_contacts
    union all
    select 'sendgrid:' || email from changed_addresses
    union all
    select 'segment:' || visitor_id from changed_devices
),
{%- endif %}

contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
    {%- if is_incremental() %}
    where contact_id in (select contact_id from changed_contacts)
    {%- endif %}
),

contact_versions as (
    -- every extracted version of those contacts: only to see an opt-out lifted since
    select object_id as contact_id, event_time as modified_at,
           coalesce(payload -> 'properties' ->> 'hs_email_optout' = 'true', false) as is_email_opted_out
    from {{ source('hubspot', 'hubspot_contacts') }}
    where object_id in (select contact_id from contacts where not is_email_opted_out)
),

email_events as (
    select * from {{ ref('stg_sendgrid__events') }}
    where event_type in ('unsubscribe', 'group_unsubscribe', 'group_resubscribe')
      and email is not null
    {%- if is_incremental() %}
      and email in (select email from changed_addresses)
    {%- endif %}
),

identified_web as (
    select * from {{ ref('int_segment_events_identified') }}
    where customer_key is not null
    {%- if is_incremental() %}
      and visitor_id in (select visitor_id from changed_devices)
    {%- endif %}
),

segment_events as (
    select * from {{ ref('stg_segment__events') }}
    where (consent_analytics is not null or consent_marketing is not null)
    {%- if is_incremental() %}
      and message_id in (select message_id from identified_web)
    {%- endif %}
),

identifiers as not materialized (
    select * from {{ ref('int_identifiers_mapped') }}
    where customer_key is not null
),

hubspot_signals as (
    select
        i.customer_key,
        'marketing' as purpose,
        signal.granted,
        c.modified_at as signal_at,
        'hubspot' as source,
        c.contact_id as source_record_id,
        signal.signal_type,
        'hubspot:' || c.contact_id as signal_group
    from contacts as c
    join identifiers as i on i.identifier_type = 'hubspot_contact' and i.identifier = c.contact_id
    cross join lateral (values
        (false, 'hs_email_optout', c.is_email_opted_out),
        (true, 'hs_legal_basis', c.legal_basis = '{{ consent_basis }}'),
        (true, 'hs_email_optout_lifted', not c.is_email_opted_out and exists (
            select 1 from contact_versions as v
            where v.contact_id = c.contact_id and v.is_email_opted_out and v.modified_at < c.modified_at))
    ) as signal (granted, signal_type, applies)
    where signal.applies
),

sendgrid_signals as (
    select
        i.customer_key,
        'marketing' as purpose,
        e.event_type = 'group_resubscribe' as granted,
        e.occurred_at as signal_at,
        'sendgrid' as source,
        e.email_event_id as source_record_id,
        e.event_type as signal_type,
        'sendgrid:' || e.email as signal_group
    from email_events as e
    join identifiers as i on i.identifier_type = 'email' and i.identifier = e.email
),

web_preferences as (
    -- one row per event and purpose it states a preference for, with the device's previous one
    select
        w.customer_key,
        w.visitor_id,
        prefs.purpose,
        prefs.granted,
        e.occurred_at,
        e.message_id,
        lag(prefs.granted) over (
            partition by w.visitor_id, w.customer_key, prefs.purpose
            order by e.occurred_at, e.message_id
        ) as previous_granted
    from segment_events as e
    join identified_web as w on w.message_id = e.message_id
    cross join lateral (values
        ('analytics', e.consent_analytics),
        ('marketing', e.consent_marketing)
    ) as prefs (purpose, granted)
    where prefs.granted is not null
),

segment_signals as (
    select
        customer_key,
        purpose,
        granted,
        occurred_at as signal_at,
        'segment' as source,
        message_id as source_record_id,
        'categoryPreferences.' || purpose as signal_type,
        'segment:' || visitor_id as signal_group
    from web_preferences
    where previous_granted is distinct from granted
),

signals as (
    select * from hubspot_signals
    union all
    select * from sendgrid_signals
    union all
    select * from segment_signals
),

final as (
    select
        {{ dbt.hash("source || ':' || source_record_id || ':' || signal_type || ':' || purpose") }} as signal_id,
        customer_key,
        purpose,
        granted,
        signal_at,
        source,
        source_record_id,
        signal_type,
        signal_group
    from signals
)

{% if is_incremental() -%}
{{ replace_rows('final', 'affected_groups', 'affected_groups.signal_group') }}
{%- else -%}
select * from final
{%- endif %}
