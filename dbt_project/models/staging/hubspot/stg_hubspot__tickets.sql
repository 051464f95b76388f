{{ hubspot_staging_config('hubspot_tickets', 'ticket_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_tickets', 'ticket_id') }}
),

final as (
    select
        object_id as ticket_id,
        {{ hubspot_first_association('contacts') }} as contact_id,
        {{ hubspot_prop('subject') }} as subject,
        {{ hubspot_prop('hs_pipeline') }} as pipeline,
        {{ hubspot_prop('hs_pipeline_stage') }} as pipeline_stage,
        coalesce({{ hubspot_prop('hs_ticket_category') }}, 'UNCATEGORISED') as category,
        {{ hubspot_prop('hs_ticket_priority') }} as priority,
        {{ hubspot_time('createdate') }} as created_at,
        {{ hubspot_time('closed_date') }} as closed_at,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
