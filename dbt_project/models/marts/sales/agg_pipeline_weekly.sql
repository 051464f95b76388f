{#- The deal pipeline per ISO week (Monday, UTC), for every region and owner together ('(all)')
    and each: per stage, the deals that entered and left it and those in it at the week's end;
    per week ('(all)' stage), the deals created, won and lost, the win rate and the cycle time.
    Method and grain: its docs block in _sales__docs.md. -#}
with deal_stages as (
    select * from {{ ref('fct_deal_stages') }}
),

stages as (
    {{ deal_pipeline_stages() }}
    union all
    -- a stage outside the declared pipeline still has its rows
    select distinct stage, stage_label, stage_order, is_closed_stage, false
    from deal_stages
    where stage not in (select s.stage from ({{ deal_pipeline_stages() }}) as s)
),

sliced_stages as (
    select ds.*, regions.region_slice, owners.owner_slice
    from deal_stages as ds
    cross join lateral (values ('(all)'), (ds.region)) as regions (region_slice)
    cross join lateral (values ('(all)'), (coalesce(ds.owner_id, 'unassigned'))) as owners (owner_slice)
),

deals as (
    -- one row per deal: what every stage row of it repeats
    select distinct on (deal_id)
        deal_id, region, owner_id, amount, deal_created_at, deal_closed_at, is_won, is_lost
    from deal_stages
    order by deal_id
),

sliced_deals as (
    select d.*, regions.region_slice, owners.owner_slice
    from deals as d
    cross join lateral (values ('(all)'), (d.region)) as regions (region_slice)
    cross join lateral (values ('(all)'), (coalesce(d.owner_id, 'unassigned'))) as owners (owner_slice)
),

bounds as (
    select
        {{ week_of("min(least(entered_at, deal_created_at))") }} as first_week,
        {{ week_of("max(greatest(entered_at, exited_at, deal_created_at))") }} as last_week
    from deal_stages
),

weeks as (
    select
        week::date as week_start,
        week::date::timestamp at time zone 'UTC' as starts_at,
        (week::date + 7)::timestamp at time zone 'UTC' as ends_at
    from bounds
    cross join generate_series(bounds.first_week, bounds.last_week, interval '7 days') as week
),

slices as (
    select distinct region_slice, owner_slice from sliced_deals
),

per_stage as (
    select
        w.week_start,
        s.region_slice,
        s.owner_slice,
        s.stage,
        count(*) filter (where s.entered_at >= w.starts_at) as deals_entered,
        count(*) filter (where s.exited_at < w.ends_at) as deals_exited,
        count(*) filter (where s.exited_at is null or s.exited_at >= w.ends_at) as deals_at_week_end,
        sum(s.amount) filter (where s.exited_at is null or s.exited_at >= w.ends_at) as amount_at_week_end,
        percentile_cont(0.5) within group (order by s.days_in_stage)
            filter (where s.exited_at < w.ends_at) as median_days_in_stage
    from weeks as w
    -- the stage rows the week sees: entered before its end, not left before its start
    join sliced_stages as s
        on s.entered_at < w.ends_at and (s.exited_at is null or s.exited_at >= w.starts_at)
    group by 1, 2, 3, 4
),

per_week as (
    select
        w.week_start,
        d.region_slice,
        d.owner_slice,
        count(*) filter (where d.deal_created_at >= w.starts_at) as deals_created,
        sum(d.amount) filter (where d.deal_created_at >= w.starts_at) as amount_created,
        count(*) filter (where d.is_won and d.deal_closed_at < w.ends_at) as deals_won,
        sum(d.amount) filter (where d.is_won and d.deal_closed_at < w.ends_at) as amount_won,
        count(*) filter (where d.is_lost and d.deal_closed_at < w.ends_at) as deals_lost,
        sum(d.amount) filter (where d.is_lost and d.deal_closed_at < w.ends_at) as amount_lost,
        percentile_cont(0.5) within group (
            order by extract(epoch from d.deal_closed_at - d.deal_created_at) / 86400.0
        ) filter (where d.deal_closed_at < w.ends_at) as median_cycle_days,
        count(*) filter (where d.deal_closed_at is null or d.deal_closed_at >= w.ends_at) as open_deals,
        sum(d.amount) filter (where d.deal_closed_at is null or d.deal_closed_at >= w.ends_at) as open_amount
    from weeks as w
    -- the deals the week sees: created before its end, not closed before its start
    join sliced_deals as d
        on d.deal_created_at < w.ends_at and (d.deal_closed_at is null or d.deal_closed_at >= w.starts_at)
    group by 1, 2, 3
),

stage_rows as (
    select
        w.week_start,
        sl.region_slice as region,
        sl.owner_slice as owner_id,
        st.stage,
        st.stage_label,
        st.stage_order,
        st.is_closed_stage,
        coalesce(p.deals_entered, 0) as deals_entered,
        coalesce(p.deals_exited, 0) as deals_exited,
        p.median_days_in_stage,
        null::bigint as deals_created,
        null::numeric as amount_created,
        null::bigint as deals_won,
        null::numeric as amount_won,
        null::bigint as deals_lost,
        null::numeric as amount_lost,
        null::numeric as win_rate,
        null::double precision as median_cycle_days,
        -- a closed stage is never left: the deals in it are not open
        case when not st.is_closed_stage then coalesce(p.deals_at_week_end, 0) end as open_deals_at_week_end,
        case when not st.is_closed_stage then coalesce(p.amount_at_week_end, 0) end as open_amount_at_week_end
    from weeks as w
    cross join slices as sl
    cross join stages as st
    left join per_stage as p
        on p.week_start = w.week_start and p.region_slice = sl.region_slice
        and p.owner_slice = sl.owner_slice and p.stage = st.stage
),

total_rows as (
    select
        w.week_start,
        sl.region_slice as region,
        sl.owner_slice as owner_id,
        '(all)' as stage,
        'All stages' as stage_label,
        0 as stage_order,
        null::boolean as is_closed_stage,
        null::bigint as deals_entered,
        null::bigint as deals_exited,
        null::double precision as median_days_in_stage,
        coalesce(p.deals_created, 0) as deals_created,
        coalesce(p.amount_created, 0) as amount_created,
        coalesce(p.deals_won, 0) as deals_won,
        coalesce(p.amount_won, 0) as amount_won,
        coalesce(p.deals_lost, 0) as deals_lost,
        coalesce(p.amount_lost, 0) as amount_lost,
        p.deals_won::numeric / nullif(p.deals_won + p.deals_lost, 0) as win_rate,
        p.median_cycle_days,
        coalesce(p.open_deals, 0) as open_deals_at_week_end,
        coalesce(p.open_amount, 0) as open_amount_at_week_end
    from weeks as w
    cross join slices as sl
    left join per_week as p
        on p.week_start = w.week_start and p.region_slice = sl.region_slice
        and p.owner_slice = sl.owner_slice
),

final as (
    select * from total_rows
    union all
    select * from stage_rows
)

select * from final
