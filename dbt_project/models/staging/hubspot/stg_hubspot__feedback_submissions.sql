{{ hubspot_staging_config('hubspot_feedback_submissions', 'feedback_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_feedback_submissions', 'feedback_id') }}
),

final as (
    select
        object_id as feedback_id,
        {{ hubspot_first_association('contacts') }} as contact_id,
        upper({{ hubspot_prop('hs_survey_type') }}) as survey_type,
        {{ hubspot_prop('hs_survey_name') }} as survey_name,
        {{ hubspot_prop('hs_survey_channel') }} as survey_channel,
        ({{ hubspot_prop('hs_value') }})::numeric as score,
        {{ hubspot_prop('hs_response_group') }} as response_group,
        {{ hubspot_prop('hs_content') }} as comment,
        coalesce({{ hubspot_time('hs_submission_timestamp') }}, {{ hubspot_time('hs_createdate') }}) as submitted_at,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
