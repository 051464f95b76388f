/* depends_on: {{ ref('int_events_classified') }} */
{{ config(
    materialized='incremental',
    unique_key='feedback_id',
    incremental_strategy='replace',
    replace_key='feedback_id',
    on_schema_change='ignore',
    indexes=[{'columns': ['feedback_id'], 'unique': True}, {'columns': ['customer_key']}, {'columns': ['submitted_at']}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- NPS and CSAT answers, each with a summary of the touchpoints before it.
    Method, grain and incremental logic: its docs block in _feedback__docs.md. -#}
with
{%- if is_incremental() %}
replaced as (
    {{ changed_feedback() }}
    union
    -- a consent changed: a comment shown whose customer refuses analytics now, or withheld
    -- whose customer no longer does (macros/consent.sql)
    select stored.feedback_id
    from {{ this }} as stored
    where (stored.comment is not null or stored.comment_withheld)
      and stored.comment_withheld <> {{ analytics_refused('stored.customer_key') }}
),
{%- endif %}

feedback as (
    select * from {{ ref('stg_hubspot__feedback_submissions') }}
    where is_archived is not true  -- a deleted answer counts nowhere
    {%- if is_incremental() %}
      and feedback_id in (select feedback_id from replaced)
    {%- endif %}
),

identifiers as (
    select * from {{ ref('int_identifiers_mapped') }} where identifier_type = 'hubspot_contact'
),

before as (
    select * from {{ ref('fct_feedback_touchpoints') }}
    {%- if is_incremental() %}
    where feedback_id in (select feedback_id from replaced)
    {%- endif %}
),

scored as (
    select
        f.feedback_id,
        i.customer_key,
        f.survey_type,
        f.survey_name,
        f.score,
        f.submitted_at,
        case when not consent.refused then f.comment end as comment,
        f.comment is not null and consent.refused as comment_withheld,
        case
            when f.survey_type = 'NPS' and f.score >= 9 then 'promoter'
            when f.survey_type = 'NPS' and f.score >= 7 then 'passive'
            when f.survey_type = 'NPS' then 'detractor'
        end as nps_group,
        case when f.survey_type = 'CSAT' then f.score >= 4 end as is_satisfied,
        (f.survey_type = 'NPS' and f.score <= 6) or (f.survey_type = 'CSAT' and f.score <= 2) as is_dissatisfied
    from feedback as f
    left join identifiers as i on i.identifier = f.contact_id
    cross join lateral (select {{ analytics_refused('i.customer_key') }} as refused) as consent
),

summary as (
    select
        feedback_id,
        count(*) as touchpoints_before,
        string_agg(distinct touchpoint, ', ' order by touchpoint) as touchpoint_types_before,
        (array_agg(touchpoint order by occurred_at desc, touchpoint_id desc))[1] as last_touchpoint_before,
        (array_agg(channel order by occurred_at desc, touchpoint_id desc))[1] as last_channel_before
    from before
    group by feedback_id
),

final as (
    select
        scored.*,
        coalesce(summary.touchpoints_before, 0) as touchpoints_before,
        summary.touchpoint_types_before,
        summary.last_touchpoint_before,
        summary.last_channel_before
    from scored
    left join summary using (feedback_id)
)

{% if is_incremental() %}
{{ replace_rows('final', 'replaced', 'replaced.feedback_id') }}
{% else %}
select * from final
{% endif %}
