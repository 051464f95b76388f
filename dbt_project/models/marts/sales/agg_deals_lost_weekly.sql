{#- Deals lost per ISO week (Monday, UTC) and reason, for every region and owner together
    ('(all)') and each. Method and grain: the docs block agg_pipeline_weekly in _sales__docs.md. -#}
with lost as (
    select distinct on (deal_id)
        deal_id, region, coalesce(owner_id, 'unassigned') as owner_id, amount, deal_closed_at,
        {{ week_of("deal_closed_at") }} as week_start
    from {{ ref('fct_deal_stages') }}
    where is_lost
    order by deal_id
),

reasons as (
    -- the reason is on the lost stage's row
    select deal_id, closed_lost_reason
    from {{ ref('fct_deal_stages') }}
    where is_current_stage and is_lost
),

sliced as (
    select lost.*, coalesce(reasons.closed_lost_reason, '(none given)') as closed_lost_reason,
           regions.region_slice, owners.owner_slice
    from lost
    left join reasons using (deal_id)
    cross join lateral (values ('(all)'), (lost.region)) as regions (region_slice)
    cross join lateral (values ('(all)'), (lost.owner_id)) as owners (owner_slice)
),

weekly as (
    select
        week_start,
        region_slice as region,
        owner_slice as owner_id,
        closed_lost_reason,
        count(*) as deals_lost,
        sum(amount) as amount_lost
    from sliced
    group by 1, 2, 3, 4
),

final as (
    select
        weekly.*,
        deals_lost::numeric / sum(deals_lost) over (partition by week_start, region, owner_id) as share_of_lost_deals
    from weekly
)

select * from final
