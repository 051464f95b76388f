{#- Conversations inbox threads per ISO week (Monday, UTC), region ('(all)' and each) and
    channel: how many, how many answered, how fast. Method and grain: its docs block in
    _support__docs.md. -#}
with threads as (
    select
        threads.*,
        {{ week_of("threads.opened_at") }} as week_start,
        coalesce(customers.region, 'Unknown') as customer_region
    from {{ ref('fct_conversation_threads') }} as threads
    left join {{ ref('dim_customers') }} as customers on customers.customer_key = threads.customer_key
),

sliced as (
    select threads.*, regions.region
    from threads
    cross join lateral (values ('(all)'), (threads.customer_region)) as regions (region)
),

final as (
    select
        week_start,
        region,
        channel,
        count(*) as threads,
        count(*) filter (where is_answered) as answered_threads,
        count(*) filter (where customer_key is null) as anonymous_threads,
        (percentile_cont(0.5) within group (order by first_response_minutes))::double precision
            as first_response_median_minutes,
        (percentile_cont(0.9) within group (order by first_response_minutes))::double precision
            as first_response_p90_minutes,
        (percentile_cont(0.5) within group (order by resolution_hours))::double precision
            as resolution_median_hours,
        sum(messages_in) as messages_in
    from sliced
    group by week_start, region, channel
)

select * from final
