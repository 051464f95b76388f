{#- Change sets the incremental marts re-build from: what changed upstream after the model's
    watermark (macros/incremental.sql), read from int_events_classified and the identity map. -#}

{% macro changed_events() -%}
    {#- The events (rows of int_events_classified) written since the model's watermark: new,
        changed, re-keyed or removed (is_removed). -#}
    select * from {{ ref('int_events_classified') }} where _updated_at > {{ watermark() }}
{%- endmacro %}

{% macro changed_customers() -%}
    {#- Customers whose events changed since the model's watermark, with the time from which
        their rows must be re-derived (changed_from): the earliest time any of those events
        has or ever had (former_occurred_ats). A new, changed, removed or re-keyed event at a
        time cannot change what was derived from the events before it, so everything before
        that time is as it was. The customers a re-keyed event left (former_customer_keys:
        merged away, or an event moved to another customer) re-derive from the same time.
        '-infinity' (all of it) only for an event that never had a time. -#}
    select customer_key, min(changed_from) as changed_from
    from (
        select customer_key, {{ earliest_time_of_event() }} as changed_from
        from {{ ref('int_events_classified') }}
        where _updated_at > {{ watermark() }} and customer_key is not null
        union all
        select former.customer_key, {{ earliest_time_of_event() }}
        from {{ ref('int_events_classified') }}
        cross join lateral unnest(former_customer_keys) as former (customer_key)
        where _updated_at > {{ watermark() }}
    ) as changes
    group by customer_key
{%- endmacro %}

{% macro earliest_time_of_event() -%}
    {#- The earliest time a row of int_events_classified has or had; '-infinity' without one. -#}
    coalesce(
        (select min(t) from unnest(array_append(former_occurred_ats, occurred_at)) as times (t)),
        '-infinity'::timestamptz
    )
{%- endmacro %}

{% macro remapped_customers() -%}
    {#- Customers whose identifiers were assigned anew since the model's watermark: the keys
        they belong to now and the keys they left (former_customer_keys: merged away). -#}
    select customer_key from {{ ref('int_identifiers_mapped') }}
    where _updated_at > {{ watermark() }} and customer_key is not null
    union
    select former.customer_key
    from {{ ref('int_identifiers_mapped') }}
    cross join lateral unnest(former_customer_keys) as former (customer_key)
    where _updated_at > {{ watermark() }}
{%- endmacro %}

{% macro purchase_changed_customers(stored_purchases) -%}
    {#- Customers whose set of purchase touchpoints changed since the model's watermark: those of
        a changed event that is a purchase now, and those who owned, in `stored_purchases`
        (the model's own rows: touchpoint_id, customer_key), a purchase whose event changed. -#}
    select customer_key from ({{ changed_events() }}) as changed
    where touchpoint = 'purchase' and is_touchpoint and not is_removed and customer_key is not null
    union
    select stored.customer_key from {{ stored_purchases }} as stored
    where stored.touchpoint_id in (select event_key from ({{ changed_events() }}) as changed)
      and stored.customer_key is not null
{%- endmacro %}

{% macro changed_feedback() -%}
    {#- Survey answers whose rows in fct_feedback / fct_feedback_touchpoints must be re-derived
        since the model's watermark: answers staged since (a new or edited submission), answers
        of contacts whose customer changed, and answers of a customer whose touchpoints changed
        submitted at or after the time they changed from (an earlier answer's lookback window
        ends before the change). -#}
    select feedback_id from {{ ref('stg_hubspot__feedback_submissions') }}
    where _loaded_at > {{ watermark() }}
    union
    select f.feedback_id
    from {{ ref('stg_hubspot__feedback_submissions') }} as f
    join {{ ref('int_identifiers_mapped') }} as i
        on i.identifier_type = 'hubspot_contact' and i.identifier = f.contact_id
    where i._key_changed_at > {{ watermark() }}
    union
    select f.feedback_id
    from ({{ changed_customers() }}) as customers
    join {{ ref('int_identifiers_mapped') }} as i
        on i.customer_key = customers.customer_key and i.identifier_type = 'hubspot_contact'
    join {{ ref('stg_hubspot__feedback_submissions') }} as f on f.contact_id = i.identifier
    where f.submitted_at >= customers.changed_from
{%- endmacro %}

{% macro newest_customer_week() -%}
    {#- The week (Monday 00:00 UTC, a timestamptz) of the newest touchpoint with a customer. -#}
    (select date_trunc('week', max(occurred_at) at time zone 'UTC') at time zone 'UTC'
     from {{ ref('fct_touchpoints') }} where customer_key is not null)
{%- endmacro %}

{% macro week_of(ts) -%}
    date_trunc('week', {{ ts }} at time zone 'UTC')::date
{%- endmacro %}

{% macro affected_weeks(with_feedback=false) -%}
    {#- ISO weeks (Monday, UTC) whose weekly figures may have changed since the model's
        watermark:
        - the weeks of every changed event, at its current and every former time;
        - for each customer whose touchpoints changed, the weeks of their touchpoints from the
          time they changed (changed_customers): new touchpoints, a first touch that moved
          (it moves only to a new event, from one at or after it), re-derived journeys and
          conversions all lie there;
        - all the weeks of a customer whose region changed (int_customers_located);
        - with_feedback: the weeks of the touchpoints of every answer staged since, and of the
          window before every answer whose time or customer changed (its old touchpoints). -#}
    select {{ week_of('times.occurred_at') }} as week_start
    from ({{ changed_events() }}) as changed
    cross join lateral unnest(array_append(changed.former_occurred_ats, changed.occurred_at)) as times (occurred_at)
    where times.occurred_at is not null
    union
    select {{ week_of('t.occurred_at') }}
    from ({{ changed_customers() }}) as customers
    join {{ ref('fct_touchpoints') }} as t
        on t.customer_key = customers.customer_key and t.occurred_at >= customers.changed_from
    union
    select {{ week_of('t.occurred_at') }}
    from {{ ref('int_customers_located') }} as located
    join {{ ref('fct_touchpoints') }} as t on t.customer_key = located.customer_key
    where located._updated_at > {{ watermark() }}
    {%- if with_feedback %}
    union
    select {{ week_of('links.occurred_at') }}
    from {{ ref('stg_hubspot__feedback_submissions') }} as answers
    join {{ ref('fct_feedback_touchpoints') }} as links on links.feedback_id = answers.feedback_id
    where answers._loaded_at > {{ watermark() }}
    union
    select window_weeks.week_start::date
    from ({{ changed_events() }}) as changed
    cross join lateral unnest(array_append(changed.former_occurred_ats, changed.occurred_at)) as times (occurred_at)
    cross join lateral generate_series(
        date_trunc('week', (times.occurred_at - interval '1 day' * {{ var('feedback_lookback_days') }}) at time zone 'UTC'),
        date_trunc('week', times.occurred_at at time zone 'UTC'),
        interval '7 days'
    ) as window_weeks (week_start)
    where changed.source = 'crm' and changed.event_type = 'feedback'
      and changed._inserted_at <= {{ watermark() }}
    {%- endif %}
{%- endmacro %}

{% macro in_weeks(ts, weeks='recomputed_weeks') -%}
    {#- On an incremental run, `and` the timestamp `ts` lies in one of the weeks of the CTE
        `weeks` (week_start): a hashed membership test on the row's week, not a range per
        week. The planner cannot know how few weeks changed (it guessed 73,716 for 3); with a
        range per week it then compared every row with every guessed week by nested loops
        (the funnel's incremental run took 50 s at scale S, against 4 s for a full one). -#}
    {%- if is_incremental() %}
    and date_trunc('week', {{ ts }} at time zone 'UTC')::date in (select week_start from {{ weeks }})
    {%- endif %}
{%- endmacro %}
