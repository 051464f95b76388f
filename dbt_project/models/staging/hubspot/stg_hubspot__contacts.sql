{{ hubspot_staging_config('hubspot_contacts', 'contact_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_contacts', 'contact_id') }}
),

final as (
    select
        object_id as contact_id,
        lower(trim({{ hubspot_prop('email') }})) as email,
        {{ hubspot_prop('firstname') }} as first_name,
        {{ hubspot_prop('lastname') }} as last_name,
        {{ hubspot_prop('lifecyclestage') }} as lifecycle_stage,
        {{ hubspot_prop('hs_analytics_source') }} as original_source,
        {{ hubspot_prop('country') }} as country,
        {{ hubspot_prop('hs_additional_emails') }} as additional_emails,
        {{ hubspot_prop('hs_merged_object_ids') }} as merged_object_ids,
        coalesce({{ hubspot_prop('hs_email_optout') }} = 'true', false) as is_email_opted_out,
        {{ hubspot_prop('hs_legal_basis') }} as legal_basis,
        {{ hubspot_first_association('companies') }} as company_id,
        {{ hubspot_time('createdate') }} as created_at,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
