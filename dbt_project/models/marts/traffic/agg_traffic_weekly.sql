{{ config(
    indexes=[{'columns': ['week_start', 'region', 'session_channel', 'source', 'medium', 'campaign',
                          'landing_page_group'], 'unique': True}],
) }}
{#- Web sessions per ISO week (Monday, UTC), region ('(all)' and each), channel, source, medium,
    campaign and landing page group, with their visitors, engagement, sign-ups and conversions.
    Method, grain and every null rule: its docs block in _traffic__docs.md. -#}
with sessions as (
    select * from {{ ref('fct_sessions') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

landing_page_groups as (
    select * from {{ ref('landing_page_groups') }}
),

described as (
    select
        s.*,
        {{ week_of("s.started_at") }} as week_start,
        coalesce(c.region, 'Unknown') as customer_region,
        -- a referrer the channel rules call direct (our own site) names no source
        case when s.session_channel <> 'direct'
             then regexp_replace({{ url_host('s.landing_referrer') }}, '^www\.', '') end as referrer_source,
        case when s.landing_path is null then '(not set)'
             else coalesce(g.landing_page_group, 'other') end as landing_page_group
    from sessions as s
    left join customers as c on c.customer_key = s.customer_key
    left join landing_page_groups as g on g.path_prefix = {{ path_prefix('s.landing_path') }}
),

attributed as (
    -- source / medium as Google Analytics names them
    select
        described.*,
        case when utm_source is not null then utm_source
             when utm_medium is not null then '(not set)'
             else coalesce(referrer_source, '(direct)') end as source,
        case when utm_medium is not null then utm_medium
             when utm_source is not null then '(not set)'
             when referrer_source is null then '(none)'
             when session_channel = 'organic_search' then 'organic'
             else 'referral' end as medium,
        coalesce(utm_campaign, '(not set)') as campaign
    from described
),

sliced as (
    select attributed.*, regions.region
    from attributed
    cross join lateral (values ('(all)'), (attributed.customer_region)) as regions (region)
),

final as (
    select
        week_start,
        region,
        session_channel,
        source,
        medium,
        campaign,
        landing_page_group,
        count(*) as sessions,
        count(*) filter (where is_engaged) as engaged_sessions,
        (count(*) filter (where is_engaged))::numeric / count(*) as engagement_rate,
        count(distinct visitor_key) as visitors,
        count(distinct visitor_key) filter (where session_number = 1) as new_visitors,
        count(distinct visitor_key)
            - count(distinct visitor_key) filter (where session_number = 1) as returning_visitors,
        count(*) filter (where has_sign_up) as sign_ups,
        count(*) filter (where has_conversion) as conversions,
        (count(*) filter (where has_conversion))::numeric / count(*) as conversion_rate,
        sum(page_views)::bigint as page_views,
        avg(duration_seconds)::numeric as avg_session_seconds
    from sliced
    group by 1, 2, 3, 4, 5, 6, 7
)

select * from final
