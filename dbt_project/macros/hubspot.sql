{#- Shared HubSpot staging helpers: every object is stored once per version in raw. -#}

{% macro hubspot_staging_config(table_name, id_column, lookup_column='contact_id') %}
    {#- Every HubSpot staging model: one row per object, the latest version, kept up to date
        incrementally (see hubspot_latest_versions). contact_id is what the marts look objects
        up by (lookup_column: another column they look it up by, indexed). -#}
    {%- set indexes = [{'columns': [id_column], 'unique': True}, {'columns': ['_loaded_at']}] -%}
    {%- if id_column not in ('contact_id', 'company_id') -%}
        {%- do indexes.append({'columns': [lookup_column]}) -%}
    {%- endif -%}
    {{ config(
        materialized='incremental',
        unique_key=id_column,
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        pre_hook="{{ ensure_loaded_at_index(source('hubspot', '" ~ table_name ~ "')) }}",
        post_hook="{{ analyze_if_rebuilt('_loaded_at') }}",
        indexes=indexes,
    ) }}
{% endmacro %}

{% macro hubspot_latest_versions(table_name, id_column) %}
    {#- The latest version of each object (raw keeps every version it saw), by last-modified
        time, then load time. A deletion is a version too (HubSpot archives a deleted object):
        when it is the latest, the object is staged with `is_archived` and the values of its last
        live version (the archive serves an object without its associations), so every model
        downstream can still find what the object made and take it away.
        Incremental: every version of the objects with a version loaded after the newest load
        already staged is read; the latest replaces the staged row when it is newer (the latest
        version overall is among them, so this equals a full read of raw). -#}
    with versions as (
        select
            raw_rows.natural_key, raw_rows.object_id, raw_rows.event_time, raw_rows.payload,
            raw_rows._batch_id, raw_rows._source, raw_rows._loaded_at,
            coalesce(raw_rows.payload ->> 'archived', 'false') = 'true' as is_archived,
            row_number() over (
                -- a deletion stamped with a change's very time comes after it
                partition by raw_rows.object_id
                order by raw_rows.event_time desc, raw_rows.payload ->> 'archived' = 'true' desc nulls last,
                         raw_rows._loaded_at desc
            ) as version_rank
        from {{ source('hubspot', table_name) }} as raw_rows
        {%- if is_incremental() %}
        where raw_rows.object_id in (
            select object_id from {{ source('hubspot', table_name) }}
            where _loaded_at > {{ newest_loaded_at() }}
        )
        {%- endif %}
    ),

    last_live as (
        select distinct on (object_id) object_id, payload
        from versions
        where not is_archived
          and object_id in (select object_id from versions where version_rank = 1 and is_archived)
        order by object_id, event_time desc, _loaded_at desc
    )

    select
        newest.natural_key, newest.object_id, newest.event_time,
        case when newest.is_archived then coalesce(last_live.payload, newest.payload)
             else newest.payload end as payload,
        newest._batch_id, newest._source, newest._loaded_at, newest.is_archived
    from versions as newest
    left join last_live on newest.is_archived and last_live.object_id = newest.object_id
    {%- if is_incremental() %}
    left join {{ this }} as staged on staged.{{ id_column }} = newest.object_id
    {%- endif %}
    where newest.version_rank = 1
    {%- if is_incremental() %}
      and (staged.{{ id_column }} is null
           or (newest.event_time, newest._loaded_at) > (staged.modified_at, staged._loaded_at))
    {%- endif %}
{% endmacro %}

{% macro hubspot_objects_to_rederive(model_name) -%}
    {#- int_events_classified: a HubSpot staging model, on an incremental run only the objects
        staged since the watermark and those of contacts whose mapping changed (the model's
        changed_contacts CTE). -#}
    select * from {{ ref(model_name) }}
    {%- if is_incremental() %}
    where _loaded_at > {{ watermark() }}
    union all
    select * from {{ ref(model_name) }}
    where _loaded_at <= {{ watermark() }}
      and contact_id in (select contact_id from changed_contacts)
    {%- endif %}
{%- endmacro %}

{% macro hubspot_prop(name) -%}
    nullif(payload -> 'properties' ->> '{{ name }}', '')
{%- endmacro %}

{% macro hubspot_time(name) -%}
    {#- HubSpot sends ISO-8601 strings, or epoch milliseconds in some properties. -#}
    case
        when {{ hubspot_prop(name) }} ~ '^[0-9]+$'
            then to_timestamp(({{ hubspot_prop(name) }})::numeric / 1000.0)
        else ({{ hubspot_prop(name) }})::timestamptz
    end
{%- endmacro %}

{% macro hubspot_first_association(to_type) -%}
    payload -> 'associations' -> '{{ to_type }}' -> 'results' -> 0 ->> 'id'
{%- endmacro %}

{% macro conversation_channel(channel_id) -%}
    {#- HubSpot's generic conversations channel ids (Conversations API v3) by name. -#}
    case {{ channel_id }}
        when '1000' then 'live_chat'
        when '1001' then 'facebook_messenger'
        when '1002' then 'email'
        when '1007' then 'whatsapp'
        else 'other'
    end
{%- endmacro %}
