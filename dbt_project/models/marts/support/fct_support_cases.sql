{{ config(indexes=[{'columns': ['case_id'], 'unique': True}, {'columns': ['customer_key']}]) }}
{#- One row per support case (HubSpot ticket), with service times and recurring-problem flags. -#}
with tickets as (
    select * from {{ ref('stg_hubspot__tickets') }} where is_archived is not true  -- deleted: no case
),

identifiers as not materialized (
    select * from {{ ref('int_identifiers_mapped') }}
    where identifier_type = 'hubspot_contact'
),

responses as (
    -- the company's first outbound contact with the customer after the case opened
    select * from {{ ref('stg_hubspot__calls') }} where direction = 'outbound' and is_archived is not true
),

crm_emails as (
    select * from {{ ref('stg_hubspot__emails') }} where direction = 'outbound' and is_archived is not true
),

cases as (
    select
        t.ticket_id as case_id,
        i.customer_key,
        t.contact_id,
        t.category,
        t.priority,
        t.pipeline_stage,
        t.created_at,
        t.closed_at,
        t.subject
    from tickets as t
    left join identifiers as i on i.identifier = t.contact_id
),

first_responses as (
    select cases.case_id, min(replies.occurred_at) as first_response_at
    from cases
    join (
        select contact_id, occurred_at from responses
        union all
        select contact_id, occurred_at from crm_emails
    ) as replies
        on replies.contact_id = cases.contact_id
        and replies.occurred_at >= cases.created_at
        and replies.occurred_at < cases.created_at + interval '7 days'
    group by cases.case_id
),

sequenced as (
    select
        cases.*,
        lag(cases.created_at) over (
            partition by cases.customer_key, cases.category order by cases.created_at, cases.case_id
        ) as previous_same_category_at,
        count(*) over (partition by cases.customer_key, cases.category) as customer_category_cases
    from cases
),

final as (
    select
        s.case_id,
        s.customer_key,
        s.category,
        s.priority,
        case when not consent.refused then s.subject end as subject,
        s.subject is not null and consent.refused as subject_withheld,
        s.created_at,
        s.closed_at,
        r.first_response_at,
        extract(epoch from r.first_response_at - s.created_at) / 3600.0 as first_response_hours,
        extract(epoch from s.closed_at - s.created_at) / 3600.0 as resolution_hours,
        s.closed_at is not null as is_closed,
        -- closed once, then moved back to an open stage
        s.closed_at is not null and s.pipeline_stage is distinct from '4' as is_reopened,
        s.customer_key is not null
            and s.previous_same_category_at is not null
            and s.created_at - s.previous_same_category_at
                <= interval '1 day' * {{ var('recurring_case_window_days') }} as is_repeat,
        s.previous_same_category_at,
        s.customer_category_cases
    from sequenced as s
    left join first_responses as r using (case_id)
    cross join lateral (select {{ analytics_refused('s.customer_key') }} as refused) as consent
)

select * from final
