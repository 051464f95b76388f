{#- Attribution per week: conversions and value credited per region, business unit, channel,
    campaign, attribution model and currency, with the week's totals.
    Method and grain: its docs block in _journeys__docs.md. -#}
with credits as (
    select
        {{ week_of('a.converted_at') }} as week_start,
        coalesce(c.region, 'Unknown') as region,
        coalesce(u.business_unit, 'other') as business_unit,
        a.channel,
        coalesce(a.campaign, '(not set)') as campaign,
        a.attribution_model,
        coalesce(a.currency, '(not set)') as currency,
        a.conversion_id,
        -- numeric: exact sums, whatever order the rows are read in
        a.weight::numeric as credited_conversions,
        a.credited_value
    from {{ ref('fct_attribution') }} as a
    left join {{ ref('dim_customers') }} as c on c.customer_key = a.customer_key
    left join {{ ref('business_units') }} as u on u.channel = a.channel
),

sliced as (
    -- each credit in every slice it belongs to: '(all)' and its own region and campaign; all
    -- business units, its unit as a whole, or its channel
    select
        credits.week_start,
        regions.region,
        units.business_unit,
        units.channel,
        campaigns.campaign,
        credits.attribution_model,
        credits.currency,
        credits.credited_conversions,
        credits.credited_value
    from credits
    cross join lateral (values ('(all)'), (credits.region)) as regions (region)
    cross join lateral (
        values ('(all)', '(all)'), (credits.business_unit, '(all)'), (credits.business_unit, credits.channel)
    ) as units (business_unit, channel)
    cross join lateral (values ('(all)'), (credits.campaign)) as campaigns (campaign)
),

credited as (
    select
        week_start, region, business_unit, channel, campaign, attribution_model, currency,
        sum(credited_conversions) as conversions_credited,
        sum(credited_value) as value_credited
    from sliced
    group by week_start, region, business_unit, channel, campaign, attribution_model, currency
),

conversions as (
    select
        {{ week_of('f.converted_at') }} as week_start,
        coalesce(c.region, 'Unknown') as region,
        coalesce(f.currency, '(not set)') as currency,
        f.conversion_id,
        f.conversion_value
    from {{ ref('fct_conversions') }} as f
    left join {{ ref('dim_customers') }} as c on c.customer_key = f.customer_key
),

week_totals as (
    -- every conversion of the week in the region and currency, whatever it credits
    select
        conversions.week_start,
        regions.region,
        conversions.currency,
        count(*) as conversions_in_week,
        sum(conversions.conversion_value) as value_in_week
    from conversions
    cross join lateral (values ('(all)'), (conversions.region)) as regions (region)
    group by conversions.week_start, regions.region, conversions.currency
),

final as (
    select
        credited.week_start,
        credited.region,
        credited.business_unit,
        credited.channel,
        credited.campaign,
        credited.attribution_model,
        credited.currency,
        credited.conversions_credited,
        credited.value_credited,
        week_totals.conversions_in_week,
        week_totals.value_in_week
    from credited
    join week_totals
        on week_totals.week_start = credited.week_start
        and week_totals.region = credited.region
        and week_totals.currency = credited.currency
)

select * from final
