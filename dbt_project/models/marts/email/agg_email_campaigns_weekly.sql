{#- Email campaigns per ISO week of the send (Monday, UTC), for every region together ('(all)')
    and each region: what was sent, delivered, bounced, opened by people and by machines,
    clicked, reported and unsubscribed from, and the rates.
    Method and grain: its docs block in _email__docs.md. -#}
with sends as (
    select
        sends.*,
        {{ week_of("sends.sent_at") }} as week_start,
        coalesce(customers.region, 'Unknown') as customer_region
    from {{ ref('fct_email_sends') }} as sends
    left join {{ ref('dim_customers') }} as customers on customers.customer_key = sends.customer_key
),

sliced as (
    select sends.*, regions.region
    from sends
    cross join lateral (values ('(all)'), (sends.customer_region)) as regions (region)
),

weekly as (
    select
        week_start,
        region,
        campaign,
        -- a campaign is sent under one category; were it several, the first alphabetically
        min(category) as category,
        -- marketing when any of its messages went out in an unsubscribe group
        case when bool_or(message_kind = 'marketing') then 'marketing' else 'transactional' end
            as message_kind,
        count(*) as messages_sent,
        count(*) filter (where is_delivered) as delivered,
        count(*) filter (where bounce_type = 'hard') as hard_bounces,
        count(*) filter (where bounce_type = 'soft') as soft_bounces,
        count(*) filter (where is_dropped) as dropped,
        count(*) filter (where is_deferred) as deferred,
        count(*) filter (where is_opened) as unique_opens,
        sum(opens)::bigint as total_opens,
        sum(machine_opens)::bigint as machine_opens,
        count(*) filter (where machine_opens > 0 and not is_opened) as machine_only_opened,
        count(*) filter (where is_clicked) as unique_clicks,
        sum(clicks)::bigint as total_clicks,
        count(*) filter (where is_spam_report) as spam_reports,
        count(*) filter (where is_unsubscribed) as unsubscribes
    from sliced
    group by week_start, region, campaign
),

final as (
    select
        weekly.*,
        delivered::double precision / nullif(messages_sent, 0) as delivery_rate,
        (hard_bounces + soft_bounces)::double precision / nullif(messages_sent, 0) as bounce_rate,
        unique_opens::double precision / nullif(delivered, 0) as open_rate,
        unique_clicks::double precision / nullif(delivered, 0) as click_rate,
        unique_clicks::double precision / nullif(unique_opens, 0) as click_to_open_rate,
        unsubscribes::double precision / nullif(delivered, 0) as unsubscribe_rate,
        spam_reports::double precision / nullif(delivered, 0) as spam_report_rate
    from weekly
)

select * from final
