{{ hubspot_staging_config('hubspot_companies', 'company_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_companies', 'company_id') }}
),

final as (
    select
        object_id as company_id,
        {{ hubspot_prop('name') }} as company_name,
        lower({{ hubspot_prop('domain') }}) as domain,
        {{ hubspot_prop('industry') }} as industry,
        {{ hubspot_time('createdate') }} as created_at,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
