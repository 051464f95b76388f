{#- Attribution: conversion values, and the data-driven model's estimation periods. -#}

{% macro revalued_conversions(conversions) -%}
    {#- Conversions (conversion_id, customer_key) of `conversions` (fct_conversions, or its own
        stored rows) whose value may have changed since the model's watermark without their
        event changing: a closed-won deal staged again (its amount or currency edited). Web
        orders are immutable Segment events. -#}
    select c.conversion_id, c.customer_key
    from {{ conversions }} as c
    join {{ ref('stg_hubspot__deals') }} as d on c.source_event_id = 'deal_closed_won:' || d.deal_id
    where c.source = 'crm' and d._loaded_at > {{ watermark() }}
{%- endmacro %}

{% macro estimation_period_end(week_start) -%}
    {#- The end (exclusive, UTC) of the ISO week starting on the date `week_start`: the
        data-driven model's estimation set for that week is the paths ending in the
        var attribution_lookback_days before it. -#}
    (({{ week_start }} + 7)::timestamp at time zone 'UTC')
{%- endmacro %}
