/* depends_on: {{ ref('int_events_classified') }} */
{{ config(
    materialized='incremental',
    unique_key='touchpoint_id',
    incremental_strategy='replace',
    replace_key='feedback_id',
    on_schema_change='ignore',
    indexes=[{'columns': ['feedback_id', 'touchpoint_id'], 'unique': True}, {'columns': ['customer_key', 'occurred_at']}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- The touchpoints in the feedback_lookback_days before each survey answer.
    Method, grain and incremental logic: its docs block in _feedback__docs.md. -#}
with
{%- if is_incremental() %}
replaced as (
    {{ changed_feedback() }}
),
{%- endif %}

feedback as (
    select * from {{ ref('stg_hubspot__feedback_submissions') }}
    where is_archived is not true
    {%- if is_incremental() %}
      and feedback_id in (select feedback_id from replaced)
    {%- endif %}
),

identifiers as (
    select * from {{ ref('int_identifiers_mapped') }} where identifier_type = 'hubspot_contact'
),

touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

answers as (
    select f.feedback_id, f.submitted_at, i.customer_key
    from feedback as f
    join identifiers as i on i.identifier = f.contact_id
    where i.customer_key is not null
),

final as (
    select
        answers.feedback_id,
        touchpoints.touchpoint_id,
        answers.customer_key,
        touchpoints.occurred_at,
        touchpoints.touchpoint,
        touchpoints.channel,
        extract(epoch from answers.submitted_at - touchpoints.occurred_at) / 86400.0 as days_before
    from answers
    join touchpoints
        on touchpoints.customer_key = answers.customer_key
        and touchpoints.occurred_at < answers.submitted_at
        and touchpoints.occurred_at >= answers.submitted_at - interval '1 day' * {{ var('feedback_lookback_days') }}
        and touchpoints.touchpoint <> 'post_purchase_survey'
)

{% if is_incremental() %}
{{ replace_rows('final', 'replaced', 'replaced.feedback_id') }}
{% else %}
select * from final
{% endif %}
