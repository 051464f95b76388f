{{ config(indexes=[{'columns': ['week_start', 'region', 'category']}]) }}
{#- What customers wrote behind each case category, per week: the ticket subjects of its cases
    and the survey comments given after one, most frequent first.
    Method and grain: its docs block in _support__docs.md. -#}
{%- set max_chars = var('verbatim_max_chars') -%}
with customers as (
    -- only customers whose consent allows the report to use their words
    select customers.customer_key, coalesce(customers.region, 'Unknown') as region,
           contacts.display_name, contacts.email
    from {{ ref('dim_customers') }} as customers
    left join {{ ref('dim_customer_contacts') }} as contacts using (customer_key)
    where customers.may_be_named
),

cases as (
    select c.case_id, c.customer_key, c.category, c.subject, c.created_at
    from {{ ref('fct_support_cases') }} as c
    where c.customer_key is not null
),

subjects as (
    select customer_key, category, {{ week_of('created_at') }} as week_start,
           'ticket_subject' as source, subject as text
    from cases
    where nullif(trim(subject), '') is not null
),

comments as (
    -- a survey comment speaks for the category of the customer's latest case in the
    -- feedback_lookback_days before it
    select distinct on (f.feedback_id)
        f.customer_key, c.category, {{ week_of('f.submitted_at') }} as week_start,
        'survey_comment' as source, f.comment as text
    from {{ ref('fct_feedback') }} as f
    join cases as c
        on c.customer_key = f.customer_key
        and c.created_at <= f.submitted_at
        and c.created_at > f.submitted_at - interval '1 day' * {{ var('feedback_lookback_days') }}
    where nullif(trim(f.comment), '') is not null
    order by f.feedback_id, c.created_at desc
),

written as (
    select * from subjects
    union all
    select * from comments
),

name_patterns as (
    -- the writer's own names (each word of the display name and of the email's local part:
    -- letters only, so nothing in them needs escaping)
    select customer_key, '\m(' || string_agg(word, '|') || ')\M' as pattern
    from customers
    cross join lateral regexp_split_to_table(
        lower(coalesce(display_name, '') || ' ' || coalesce(split_part(email, '@', 1), '')),
        '[^[:alpha:]]+'
    ) as word
    where length(word) >= 2
    group by customer_key
),

masked as (
    select
        w.week_start, c.region, w.category, w.source, w.customer_key,
        regexp_replace(
            regexp_replace(
                regexp_replace(
                    case when n.pattern is null then w.text
                         else regexp_replace(w.text, n.pattern, '…', 'gi') end,
                    '[^[:space:]@]+@[^[:space:]@]+', '[email]', 'g'),
                '\+?[0-9][0-9 ().-]{6,}[0-9]', '[phone]', 'g'),
            '[[:space:]]+', ' ', 'g') as text
    from written as w
    join customers as c using (customer_key)
    left join name_patterns as n using (customer_key)
),

bounded as (
    select m.*,
           case when length(trim(text)) > {{ max_chars }}
                then left(trim(text), {{ max_chars - 1 }}) || '…'
                else trim(text) end as verbatim
    from masked as m
),

sliced as (
    select b.*, regions.region_slice
    from bounded as b
    cross join lateral (values ('(all)'), (b.region)) as regions (region_slice)
),

final as (
    select
        week_start,
        region_slice as region,
        category,
        source,
        verbatim,
        count(*) as mentions,
        count(distinct customer_key) as customers
    from sliced
    group by 1, 2, 3, 4, 5
)

select * from final
