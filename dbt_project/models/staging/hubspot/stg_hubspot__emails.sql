{{ hubspot_staging_config('hubspot_emails', 'crm_email_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_emails', 'crm_email_id') }}
),

final as (
    select
        object_id as crm_email_id,
        {{ hubspot_first_association('contacts') }} as contact_id,
        {{ hubspot_first_association('deals') }} as deal_id,
        {{ hubspot_time('hs_timestamp') }} as occurred_at,
        case {{ hubspot_prop('hs_email_direction') }}
            when 'INCOMING_EMAIL' then 'inbound' else 'outbound'
        end as direction,
        {{ hubspot_prop('hs_email_subject') }} as subject,
        {{ hubspot_prop('hs_email_status') }} as email_status,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
