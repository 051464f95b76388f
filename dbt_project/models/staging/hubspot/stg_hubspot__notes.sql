{{ hubspot_staging_config('hubspot_notes', 'note_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_notes', 'note_id') }}
),

final as (
    select
        object_id as note_id,
        {{ hubspot_first_association('contacts') }} as contact_id,
        {{ hubspot_time('hs_timestamp') }} as occurred_at,
        {{ hubspot_prop('hubspot_owner_id') }} as owner_id,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
