-- A flagged signal explained by another (explained_by) leads, along explained_by, to a flagged
-- signal of the same week and region that is shown (explained by nothing): otherwise the report
-- would explain an anomaly away with nothing named for it. Returns the rows whose walk loops or
-- ends on a row that is not flagged.
with recursive signals as (
    select signal_key, week_start, region, status, explained_by
    from {{ ref('agg_touchpoint_signals') }}
),

walks as (
    select signal_key, week_start, region, explained_by as reached, array[signal_key] as path
    from signals
    where explained_by is not null
    union all
    select w.signal_key, w.week_start, w.region, s.explained_by, w.path || s.signal_key
    from walks as w
    join signals as s
        on s.signal_key = w.reached and s.week_start = w.week_start and s.region = w.region
    where s.explained_by is not null and s.signal_key <> all(w.path)
),

ends as (
    -- where each walk stops: the last row it reached
    select distinct on (signal_key, week_start, region) signal_key, week_start, region, reached
    from walks
    order by signal_key, week_start, region, cardinality(path) desc
)

select e.signal_key, e.week_start, e.region, e.reached as stops_at, shown.status as its_status
from ends as e
left join signals as shown
    on shown.signal_key = e.reached and shown.week_start = e.week_start and shown.region = e.region
where shown.explained_by is not null
    or shown.status is null
    or shown.status not in ('needs_attention', 'improved')
