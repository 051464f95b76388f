with source as (
    select * from {{ source('hubspot', 'hubspot_contacts') }}
),

versions as (
    select
        object_id as contact_id,
        nullif(lower(trim(payload -> 'properties' ->> 'email')), '') as email,
        payload -> 'properties' ->> 'firstname' as first_name,
        payload -> 'properties' ->> 'lastname' as last_name,
        payload -> 'properties' ->> 'lifecyclestage' as lifecycle_stage,
        payload -> 'properties' ->> 'hs_analytics_source' as original_source,
        payload -> 'properties' ->> 'country' as country,
        (payload -> 'properties' ->> 'createdate')::timestamptz as created_at,
        event_time as modified_at,
        _loaded_at,
        row_number() over (partition by object_id order by event_time desc, _loaded_at desc) as version_rank
    from source
),

final as (
    -- one row per contact: its latest known version
    select
        contact_id, email, first_name, last_name, lifecycle_stage, original_source, country,
        created_at, modified_at, _loaded_at
    from versions
    where version_rank = 1
)

select * from final
