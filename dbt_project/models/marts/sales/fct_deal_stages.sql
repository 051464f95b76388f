{{ config(indexes=[{'columns': ['deal_id', 'stage'], 'unique': True}, {'columns': ['customer_key']}]) }}
{#- One row per deal and pipeline stage it passed through: when it entered and left the stage,
    from HubSpot's stage history, else from the versions extracted.
    Method and grain: its docs block in _sales__docs.md. -#}
with deals as (
    select * from {{ ref('stg_hubspot__deals') }} where is_archived is not true  -- deleted: gone
),

versions as (
    select * from {{ ref('stg_hubspot__deal_versions') }}
    where deal_id in (select deal_id from deals) and not is_archived
),

stages as (
    {{ deal_pipeline_stages() }}
),

identifiers as not materialized (
    select * from {{ ref('int_identifiers_mapped') }} where identifier_type = 'hubspot_contact'
),

customers as (
    select customer_key, region from {{ ref('dim_customers') }}
),

business_unit as (
    select business_unit from {{ ref('business_units') }} where channel = 'sales'
),

latest_history as (
    -- HubSpot's calculated stage history as the latest version serves it
    select v.deal_id, s.stage, h.entered_at, h.exited_at
    from versions as v
    cross join stages as s
    cross join lateral (
        select
            case s.stage
            {%- for stage in var('deal_pipeline_stages') %}
                when '{{ stage.id }}' then v.entered_{{ stage.id }}_at
            {%- endfor %}
            end as entered_at,
            case s.stage
            {%- for stage in var('deal_pipeline_stages') %}
                when '{{ stage.id }}' then v.exited_{{ stage.id }}_at
            {%- endfor %}
            end as exited_at
    ) as h
    where v.version_rank = 1
),

observed as (
    -- the first extracted version that shows the deal in each stage it was seen in
    select deal_id, deal_stage as stage, min(modified_at) as first_seen_at
    from versions
    where deal_stage is not null
    group by 1, 2
),

passed as (
    select
        coalesce(h.deal_id, o.deal_id) as deal_id,
        coalesce(h.stage, o.stage) as stage,
        coalesce(h.entered_at, o.first_seen_at) as entered_at,
        h.exited_at as exited_property_at
    from latest_history as h
    full join observed as o on o.deal_id = h.deal_id and o.stage = h.stage
    where h.entered_at is not null or o.first_seen_at is not null
),

timed as (
    select
        p.deal_id,
        p.stage,
        p.entered_at,
        p.stage = d.deal_stage as is_current_stage,
        case
            when p.stage = d.deal_stage then null
            -- HubSpot's exit, unless it predates the entry (a re-entered stage keeps its old exit)
            when p.exited_property_at >= p.entered_at then p.exited_property_at
            -- else the first evidence it left: the next stage entered, or a version elsewhere
            else least(
                (select min(n.entered_at) from passed as n
                 where n.deal_id = p.deal_id and n.stage <> p.stage and n.entered_at > p.entered_at),
                (select min(v.modified_at) from versions as v
                 where v.deal_id = p.deal_id and v.deal_stage is distinct from p.stage
                   and v.modified_at > p.entered_at)
            )
        end as exited_at
    from passed as p
    join deals as d on d.deal_id = p.deal_id
),

closings as (
    -- the deal's outcome: its current stage, when that is a closed one, entered then
    select t.deal_id, t.entered_at as closed_at, s.is_won_stage
    from timed as t
    join stages as s on s.stage = t.stage
    where t.is_current_stage and s.is_closed_stage
),

final as (
    select
        md5(t.deal_id || ':' || t.stage) as deal_stage_key,
        t.deal_id,
        i.customer_key,
        d.owner_id,
        (select business_unit from business_unit) as business_unit,
        coalesce(c.region, 'Unknown') as region,
        d.deal_type,
        d.pipeline,
        t.stage,
        s.stage_label,
        coalesce(s.stage_order, 0) as stage_order,
        coalesce(s.is_closed_stage, false) as is_closed_stage,
        t.entered_at,
        t.exited_at,
        extract(epoch from t.exited_at - t.entered_at) / 3600.0 as hours_in_stage,
        extract(epoch from t.exited_at - t.entered_at) / 86400.0 as days_in_stage,
        t.is_current_stage,
        d.amount,
        d.created_at as deal_created_at,
        closings.closed_at as deal_closed_at,
        coalesce(closings.is_won_stage, false) as is_won,
        coalesce(not closings.is_won_stage, false) as is_lost,
        case when s.is_closed_stage and not s.is_won_stage then d.closed_lost_reason end as closed_lost_reason
    from timed as t
    join deals as d on d.deal_id = t.deal_id
    left join stages as s on s.stage = t.stage
    left join closings on closings.deal_id = t.deal_id
    left join identifiers as i on i.identifier = d.contact_id
    left join customers as c on c.customer_key = i.customer_key
)

select * from final
