{{ hubspot_staging_config('hubspot_calls', 'call_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_calls', 'call_id') }}
),

final as (
    select
        object_id as call_id,
        {{ hubspot_first_association('contacts') }} as contact_id,
        {{ hubspot_first_association('deals') }} as deal_id,
        {{ hubspot_time('hs_timestamp') }} as occurred_at,
        {{ hubspot_prop('hs_call_title') }} as title,
        lower({{ hubspot_prop('hs_call_direction') }}) as direction,
        ({{ hubspot_prop('hs_call_duration') }})::bigint / 1000.0 as duration_seconds,
        {{ hubspot_prop('hs_call_status') }} as call_status,
        {{ hubspot_prop('hs_call_disposition') }} as disposition,
        {{ hubspot_prop('hubspot_owner_id') }} as owner_id,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
