{{ config(
    materialized='incremental',
    unique_key='channel',
    incremental_strategy='replace',
    replace_key='week_start',
    on_schema_change='ignore',
    indexes=[{'columns': ['week_start', 'channel'], 'unique': True}, {'columns': ['_updated_at']}],
    post_hook=["{{ analyze_if_rebuilt() }}", "{{ save_watermark() }}"],
) }}
{#- The data-driven attribution model's removal effect of each channel, per estimation period
    (the ISO week of the conversions it credits), from a first-order Markov chain of the
    channel paths in fct_conversion_paths.
    Method, grain and incremental logic: its docs block in _int_attribution__docs.md. -#}
{%- set lookback = "interval '1 day' * " ~ (var('attribution_lookback_days') | int) -%}
with recursive periods as (
    select distinct {{ week_of('converted_at') }} as week_start from {{ ref('fct_conversions') }}
),

estimation_paths as (
    -- a period's estimation set: every path ending in the lookback window up to its week's end
    select p.week_start, cp.channel_path, cp.is_converting
    from periods as p
    join {{ ref('fct_conversion_paths') }} as cp
        on cp.path_end_at > {{ estimation_period_end('p.week_start') }} - {{ lookback }}
        and cp.path_end_at <= {{ estimation_period_end('p.week_start') }}
),

path_counts as (
    select
        week_start,
        count(*) as estimation_paths,
        count(*) filter (where is_converting) as estimation_conversions
    from estimation_paths
    group by week_start
),

steps as (
    -- start -> first channel -> ... -> last channel -> (conversion) or (null)
    select
        e.week_start,
        case when s.i = 1 then '(start)' else e.channel_path[s.i - 1] end as from_state,
        case
            when s.i <= cardinality(e.channel_path) then e.channel_path[s.i]
            when e.is_converting then '(conversion)'
            else '(null)'
        end as to_state
    from estimation_paths as e
    cross join lateral generate_series(1, cardinality(e.channel_path) + 1) as s (i)
),

transitions as (
    -- a channel repeated in a row is one visit to its state: a self-loop only delays
    -- absorption, it never changes where the chain ends
    select week_start, from_state, to_state, count(*) as transitions
    from steps
    where from_state <> to_state
    group by week_start, from_state, to_state
),

probabilities as (
    select
        week_start,
        from_state,
        to_state,
        transitions::double precision
            / (sum(transitions) over (partition by week_start, from_state))::double precision as probability
    from transitions
),

states as (
    -- the chain's transient states, numbered: 1 the start, then the channels by name (every
    -- channel of a path leaves for another state, so each is a from_state)
    select
        week_start,
        state,
        row_number() over (partition by week_start order by state <> '(start)', state)::integer as idx,
        count(*) over (partition by week_start)::integer as k
    from (select distinct week_start, from_state as state from transitions) as transient
),

scenarios as (
    -- the full chain (removed null), and the chain without each channel
    select distinct week_start, k, null::text as removed from states
    union all
    select week_start, k, state from states where state <> '(start)'
),

systems as (
    -- (I - Q) v = r as a k x (k + 1) row-major array: Q the transient-to-transient
    -- probabilities, a removed channel's inbound ones zeroed (they go to (null)); r the
    -- probabilities of converting next. v(i): the probability of converting from state i.
    select
        sc.week_start,
        sc.removed,
        sc.k,
        array_agg(
            case
                when cell.j = sc.k + 1 then coalesce(conv.probability, 0)
                else case when cell.i = cell.j then 1 else 0 end
                    - case when dst.state = sc.removed then 0 else coalesce(q.probability, 0) end
            end
            order by cell.i, cell.j
        ) as m
    from scenarios as sc
    cross join lateral (
        select i, j from generate_series(1, sc.k) as i cross join generate_series(1, sc.k + 1) as j
    ) as cell
    join states as src on src.week_start = sc.week_start and src.idx = cell.i
    left join states as dst on dst.week_start = sc.week_start and dst.idx = cell.j
    left join probabilities as q
        on q.week_start = sc.week_start and q.from_state = src.state and q.to_state = dst.state
    left join probabilities as conv
        on cell.j = sc.k + 1 and conv.week_start = sc.week_start and conv.from_state = src.state
        and conv.to_state = '(conversion)'
    group by sc.week_start, sc.removed, sc.k
),

eliminated (week_start, removed, k, pivot, m) as (
    -- Gauss-Jordan elimination, one pivot per step. No pivoting needed: I - Q is diagonally
    -- dominant (Q's rows sum to at most 1, its diagonal is 0) and every state reaches an
    -- absorbing one, so no pivot is 0.
    select week_start, removed, k, 0, m from systems
    union all
    select e.week_start, e.removed, e.k, e.pivot + 1, step.m
    from eliminated as e
    cross join lateral (
        select array_agg(
            case
                when i = e.pivot + 1
                    then e.m[(i - 1) * (e.k + 1) + j] / e.m[e.pivot * (e.k + 1) + e.pivot + 1]
                else e.m[(i - 1) * (e.k + 1) + j]
                    - e.m[(i - 1) * (e.k + 1) + e.pivot + 1] / e.m[e.pivot * (e.k + 1) + e.pivot + 1]
                    * e.m[e.pivot * (e.k + 1) + j]
            end
            order by i, j
        ) as m
        from generate_series(1, e.k) as i cross join generate_series(1, e.k + 1) as j
    ) as step
    where e.pivot < e.k
),

solved as (
    -- the start state's row of the reduced system: P(conversion)
    select week_start, removed, m[k + 1] as conversion_probability
    from eliminated
    where pivot = k
),

effects as (
    select
        full_chain.week_start,
        without.removed as channel,
        full_chain.conversion_probability,
        without.conversion_probability as conversion_probability_without,
        -- removing a channel cannot raise P(conversion): a rounding error's negative is 0
        case
            when full_chain.conversion_probability > 0
                then greatest(0, 1 - without.conversion_probability / full_chain.conversion_probability)
            else 0
        end as removal_effect,
        counts.estimation_paths,
        counts.estimation_conversions
    from solved as full_chain
    join solved as without on without.week_start = full_chain.week_start and without.removed is not null
    join path_counts as counts on counts.week_start = full_chain.week_start
    where full_chain.removed is null
),

{% if is_incremental() %}
changed_weeks as (
    -- the periods whose effects differ from the stored ones (a channel new, gone or moved)
    select distinct coalesce(now_.week_start, stored.week_start) as week_start
    from effects as now_
    full join {{ this }} as stored on stored.week_start = now_.week_start and stored.channel = now_.channel
    where now_.week_start is null
       or stored.week_start is null
       or (now_.conversion_probability, now_.conversion_probability_without, now_.removal_effect,
           now_.estimation_paths, now_.estimation_conversions)
          is distinct from
          (stored.conversion_probability, stored.conversion_probability_without, stored.removal_effect,
           stored.estimation_paths, stored.estimation_conversions)
),

final as (
    select effects.*, now() as _updated_at
    from effects
    where week_start in (select week_start from changed_weeks)
)

{{ replace_rows('final', 'changed_weeks', 'changed_weeks.week_start') }}
{% else %}
final as (
    select effects.*, now() as _updated_at from effects
)

select * from final
{% endif %}
