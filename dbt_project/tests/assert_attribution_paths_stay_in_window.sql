-- A credited touchpoint happened before its conversion and within the lookback window;
-- only a conversion with an empty path credits itself.
select *
from {{ written_rows(ref('fct_attribution')) }}
where (
        not is_conversion_touchpoint
        and (
            touched_at >= converted_at
            or touched_at < converted_at - interval '{{ var("attribution_lookback_days") | int }} days'
            or touchpoint_id = conversion_id
        )
    )
   or (is_conversion_touchpoint and (touchpoint_id <> conversion_id or path_length <> 1))
