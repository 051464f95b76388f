{{ hubspot_staging_config('hubspot_meetings', 'meeting_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_meetings', 'meeting_id') }}
),

final as (
    select
        object_id as meeting_id,
        {{ hubspot_first_association('contacts') }} as contact_id,
        {{ hubspot_first_association('deals') }} as deal_id,
        {{ hubspot_time('hs_timestamp') }} as occurred_at,
        {{ hubspot_prop('hs_meeting_title') }} as title,
        {{ hubspot_prop('hs_meeting_outcome') }} as outcome,
        {{ hubspot_prop('hs_meeting_location') }} as location,
        {{ hubspot_prop('hs_activity_type') }} as activity_type,
        coalesce({{ hubspot_prop('hs_meeting_location') }} ilike 'store%', false) as is_in_store,
        {{ hubspot_prop('hubspot_owner_id') }} as owner_id,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
