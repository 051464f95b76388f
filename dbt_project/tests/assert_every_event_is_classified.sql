{{ config(severity='warn') }}
-- Source events that no touchpoint_taxonomy row matches: extend the seed to classify them.
select source, event_type, event_detail, count(*) as events
from {{ written_rows(ref('int_events_classified')) }}
where is_unmapped and not is_removed
group by 1, 2, 3
