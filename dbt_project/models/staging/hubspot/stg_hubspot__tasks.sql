{{ hubspot_staging_config('hubspot_tasks', 'task_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_tasks', 'task_id') }}
),

final as (
    select
        object_id as task_id,
        {{ hubspot_first_association('contacts') }} as contact_id,
        {{ hubspot_time('hs_timestamp') }} as occurred_at,
        {{ hubspot_prop('hs_task_subject') }} as subject,
        {{ hubspot_prop('hs_task_status') }} as task_status,
        {{ hubspot_prop('hs_task_type') }} as task_type,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
