{#- Every version of every deal raw holds (raw keeps one row per version extracted): the stage
    it was in then, and HubSpot's calculated stage history as that version served it. A view:
    the deal models rank the versions afresh on every build (a new version changes which one is
    the latest), and deals are few. -#}
{{ config(materialized='view') }}
with versions as (
    select * from {{ source('hubspot', 'hubspot_deals') }}
),

final as (
    select
        natural_key as version_key,
        object_id as deal_id,
        event_time as modified_at,
        coalesce(payload ->> 'archived', 'false') = 'true' as is_archived,
        {{ hubspot_prop('dealstage') }} as deal_stage,
        {%- for stage in var('deal_pipeline_stages') %}
        {{ hubspot_time('hs_date_entered_' ~ stage.id) }} as entered_{{ stage.id }}_at,
        {{ hubspot_time('hs_date_exited_' ~ stage.id) }} as exited_{{ stage.id }}_at,
        {%- endfor %}
        -- 1: the latest version, in the order the deal's staging row is chosen by
        -- (hubspot_latest_versions: modified time, a deletion after a change of the same time,
        -- then load time)
        row_number() over (
            partition by object_id
            order by event_time desc, payload ->> 'archived' = 'true' desc nulls last, _loaded_at desc
        ) as version_rank,
        _loaded_at
    from versions
)

select * from final
