{#- Shared HubSpot staging helpers: every object is stored once per version in raw. -#}

{% macro hubspot_staging_config(table_name, id_column) %}
    {#- Every HubSpot staging model: one row per object, the latest version, kept up to date
        incrementally (see hubspot_latest_versions). contact_id is what the marts look objects
        up by. -#}
    {%- set indexes = [{'columns': [id_column], 'unique': True}, {'columns': ['_loaded_at']}] -%}
    {%- if id_column not in ('contact_id', 'company_id') -%}
        {%- do indexes.append({'columns': ['contact_id']}) -%}
    {%- endif -%}
    {{ config(
        materialized='incremental',
        unique_key=id_column,
        incremental_strategy='delete+insert',
        pre_hook="{{ ensure_loaded_at_index(source('hubspot', '" ~ table_name ~ "')) }}",
        post_hook="{{ analyze_if_rebuilt('_loaded_at') }}",
        indexes=indexes,
    ) }}
{% endmacro %}

{% macro hubspot_latest_versions(table_name, id_column) %}
    {#- The latest version of each object (raw keeps every version it saw), by last-modified
        time, then load time.
        Incremental: only the versions loaded after the newest load already staged are read;
        the latest of them replaces the staged row when it is newer (the latest version overall
        is the later of the two, so this equals a full read of raw). -#}
    select ranked.*
    from (
        select
            raw_rows.*,
            row_number() over (
                partition by object_id order by event_time desc, _loaded_at desc
            ) as version_rank
        from {{ source('hubspot', table_name) }} as raw_rows
        {%- if is_incremental() %}
        where raw_rows._loaded_at > {{ newest_loaded_at() }}
        {%- endif %}
    ) as ranked
    {%- if is_incremental() %}
    left join {{ this }} as staged on staged.{{ id_column }} = ranked.object_id
    {%- endif %}
    where ranked.version_rank = 1
    {%- if is_incremental() %}
      and (staged.{{ id_column }} is null
           or (ranked.event_time, ranked._loaded_at) > (staged.modified_at, staged._loaded_at))
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
