{#- Which touchpoints came before each survey answer: one row per (feedback, touchpoint) in the
    feedback_lookback_days before it, so dissatisfaction can be traced back to touchpoints. -#}
with feedback as (
    select * from {{ ref('stg_hubspot__feedback_submissions') }}
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

select * from final
