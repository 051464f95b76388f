{#- Shared HubSpot staging helpers: every object is stored once per version in raw. -#}

{% macro hubspot_latest_versions(table_name) %}
    {#- The latest version of each object (raw keeps every version it saw). -#}
    select *
    from (
        select
            raw_rows.*,
            row_number() over (
                partition by object_id order by event_time desc, _loaded_at desc
            ) as version_rank
        from {{ source('hubspot', table_name) }} as raw_rows
    ) as ranked
    where version_rank = 1
{% endmacro %}

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
