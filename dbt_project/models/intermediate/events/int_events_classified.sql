{{ config(
    materialized='incremental',
    unique_key='event_key',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['event_key'], 'unique': True}, {'columns': ['_updated_at']}],
    post_hook=["{{ analyze_if_rebuilt('_updated_at') }}", "{{ save_watermark() }}"],
) }}
{#- Every source event in one shape, classified through the touchpoint_taxonomy seed, with
    the change tracking the incremental marts re-build from.
    Method, grain and incremental logic: its docs block in _int_events__docs.md. -#}
with taxonomy as (
    select * from {{ ref('touchpoint_taxonomy') }}
),

channel_grouping as (
    select * from {{ ref('channel_grouping') }}
),

identifiers as not materialized (
    select * from {{ ref('int_identifiers_mapped') }}
),

{% if is_incremental() %}
changed_identifiers as (
    select identifier_type, identifier from identifiers
    where _key_changed_at > {{ watermark() }} and identifier_type in ('email', 'hubspot_contact')
),

changed_contacts as (
    select identifier as contact_id from changed_identifiers where identifier_type = 'hubspot_contact'
),

stored as not materialized (
    select * from {{ this }}
),
{% endif %}

identified_web as (
    select * from {{ ref('int_segment_events_identified') }}
    where event_type in ('page', 'track', 'screen')
    {%- if is_incremental() %} and _updated_at > {{ watermark() }}{% endif %}
),

segment_events as not materialized (
    select * from {{ ref('stg_segment__events') }}
    {%- if is_incremental() %}
    where message_id in (select message_id from identified_web)
    {%- endif %}
),

email_events as (
    select * from {{ ref('stg_sendgrid__events') }}
    {%- if is_incremental() %}
    where _loaded_at > {{ watermark() }}
    union all
    select * from {{ ref('stg_sendgrid__events') }}
    where _loaded_at <= {{ watermark() }}
      and email in (select identifier from changed_identifiers where identifier_type = 'email')
    {%- endif %}
),

contacts as (
    {{ hubspot_objects_to_rederive('stg_hubspot__contacts') }}
),

calls as (
    {{ hubspot_objects_to_rederive('stg_hubspot__calls') }}
),

meetings as (
    {{ hubspot_objects_to_rederive('stg_hubspot__meetings') }}
),

crm_emails as (
    {{ hubspot_objects_to_rederive('stg_hubspot__emails') }}
),

deals as (
    {{ hubspot_objects_to_rederive('stg_hubspot__deals') }}
),

tickets as (
    {{ hubspot_objects_to_rederive('stg_hubspot__tickets') }}
),

feedback as (
    {{ hubspot_objects_to_rederive('stg_hubspot__feedback_submissions') }}
),

notes as (
    {{ hubspot_objects_to_rederive('stg_hubspot__notes') }}
),

tasks as (
    {{ hubspot_objects_to_rederive('stg_hubspot__tasks') }}
),

conversation_messages as (
    -- the inbox's messages with their thread's contact (the latest: a chat's visitor may become
    -- a contact later); incremental: those whose message or thread was staged since, or whose
    -- contact's mapping changed
    select m.message_id, m.message_type, m.direction, m.channel, m.created_at, m.is_archived,
           t.contact_id, t.is_archived as is_thread_archived
    from {{ ref('stg_hubspot__conversation_messages') }} as m
    inner join {{ ref('stg_hubspot__conversation_threads') }} as t on t.thread_id = m.thread_id
    {%- if is_incremental() %}
    where m._loaded_at > {{ watermark() }} or t._loaded_at > {{ watermark() }}
       or t.contact_id in (select contact_id from changed_contacts)
    {%- endif %}
),

crm_activity as (
    -- every CRM object that can be an interaction, in one shape, keyed to its contact
    -- a deleted object (is_archived) makes nothing: what it made before is removed below
    select 'call:' || call_id as source_event_id, 'call' as event_type,
           coalesce(direction, 'outbound') as event_detail, occurred_at, contact_id
    from calls
    where is_archived is not true
    union all
    select 'meeting:' || meeting_id, 'meeting',
           case when is_in_store then 'in_store'
                when activity_type ilike '%onboarding%' or title ilike '%onboarding%' then 'onboarding'
                else 'sales' end,
           occurred_at, contact_id
    from meetings
    -- only meetings that took place: scheduled ones may lie in the future
    where coalesce(outcome, 'COMPLETED') = 'COMPLETED' and is_archived is not true
    union all
    select 'crm_email:' || crm_email_id, 'crm_email', direction, occurred_at, contact_id
    from crm_emails
    where is_archived is not true
    union all
    select 'deal_created:' || deal_id, 'deal_created', coalesce(deal_type, 'newbusiness'), created_at, contact_id
    from deals
    where is_archived is not true
    union all
    select 'deal_closed_won:' || deal_id, 'deal_closed_won',
           case when deal_name ilike any (array['%upgrade%', '%upsell%']) then 'upgrade'
                when deal_type = 'existingbusiness' then 'renewal'
                else 'newbusiness' end,
           coalesce(closed_at, modified_at), contact_id
    from deals
    where is_closed_won and is_archived is not true
    union all
    select 'ticket:' || ticket_id, 'ticket', category, created_at, contact_id
    from tickets
    where is_archived is not true
    union all
    select 'feedback:' || feedback_id, 'feedback', survey_type, submitted_at, contact_id
    from feedback
    where is_archived is not true
    union all
    select 'note:' || note_id, 'note', '*', occurred_at, contact_id from notes
    where is_archived is not true
    union all
    select 'task:' || task_id, 'task', '*', occurred_at, contact_id from tasks
    where is_archived is not true
    union all
    -- a customer's message is a touchpoint, an agent's reply is not (the taxonomy says which)
    select 'message:' || message_id,
           case when direction = 'incoming' then 'message' else 'message_reply' end,
           channel, created_at, contact_id
    from conversation_messages
    where message_type = 'MESSAGE' and is_archived is not true and is_thread_archived is not true
),

page_arrivals as (
    -- the sessions' channel rules on a page's own tags and referrer: a page they call
    -- organic_social arrived from a social network (the networks are listed there only). Once
    -- per distinct combination, not per page: a rule scan per event cost 24 s a million pages.
    select arrivals.*, rule.session_channel
    from (
        select distinct
            coalesce(utm_medium, '') as utm_medium,
            coalesce(utm_source, '') as utm_source,
            coalesce(page_referrer, '') as page_referrer
        from segment_events
        where event_type = 'page'
    ) as arrivals
    left join lateral (
        select g.session_channel
        from channel_grouping as g
        where (g.utm_medium is null or nullif(arrivals.utm_medium, '') ~* g.utm_medium)
          and (g.utm_source is null or nullif(arrivals.utm_source, '') ~* g.utm_source)
          and (g.referrer_host is null or {{ url_host('arrivals.page_referrer') }} ~* g.referrer_host)
        order by g.priority
        limit 1
    ) as rule on true
),

web as (
    select
        'web' as source,
        e.message_id as source_event_id,
        e.event_type,
        case
            when e.event_type = 'track' then
                regexp_replace(lower(trim(e.track_event_name)), '[^a-z0-9]+', '_', 'g')
                || case when e.list_id ilike '%recommend%' then '_recommended' else '' end
            when e.utm_medium in ('cpc', 'ppc', 'display', 'paid_social') then 'paid'
            when referred.session_channel = 'organic_social' then 'social'
            when coalesce(e.page_path, '/') = '/' then 'home'
            else split_part(e.page_path, '/', 2)
        end as event_detail,
        e.occurred_at,
        w.customer_key
    from segment_events as e
    left join page_arrivals as referred
        on e.event_type = 'page'
        and referred.utm_medium = coalesce(e.utm_medium, '')
        and referred.utm_source = coalesce(e.utm_source, '')
        and referred.page_referrer = coalesce(e.page_referrer, '')
    {%- if is_incremental() %}
    inner join identified_web as w on w.message_id = e.message_id
    {%- else %}
    left join identified_web as w on w.message_id = e.message_id
    where e.event_type in ('page', 'track', 'screen')
    {%- endif %}
),

email as (
    select
        'email' as source,
        e.email_event_id as source_event_id,
        -- a mail client's proxy fetching the pixel is no reader's touchpoint (taxonomy: machine_open)
        case when e.is_machine_open then 'machine_open' else e.event_type end as event_type,
        coalesce(e.category, 'uncategorised') as event_detail,
        e.occurred_at,
        i.customer_key
    from email_events as e
    left join identifiers as i
        on i.identifier_type = 'email' and i.identifier = e.email
),

crm as (
    select
        'crm' as source,
        'contact:' || c.contact_id as source_event_id,
        'contact_created' as event_type,
        coalesce(lower(c.original_source), 'unknown') as event_detail,
        c.created_at as occurred_at,
        i.customer_key
    from contacts as c
    left join identifiers as i
        on i.identifier_type = 'hubspot_contact' and i.identifier = c.contact_id
    where c.is_archived is not true
    union all
    select
        'crm', a.source_event_id, a.event_type, a.event_detail, a.occurred_at, i.customer_key
    from crm_activity as a
    left join identifiers as i
        on i.identifier_type = 'hubspot_contact' and i.identifier = a.contact_id
    where a.occurred_at is not null
),

events as (
    select * from web
    union all
    select * from email
    union all
    select * from crm
),

classified as (
    select
        events.*,
        match.touchpoint,
        match.channel,
        match.interaction,
        match.direction,
        match.journey_stage,
        coalesce(match.is_touchpoint, false) as is_touchpoint,
        match.touchpoint is null as is_unmapped
    from events
    left join lateral (
        select t.*
        from taxonomy as t
        where t.source = events.source
          and t.event_type = events.event_type
          and t.event_detail in (events.event_detail, '*')
        order by (t.event_detail = '*')
        limit 1
    ) as match on true
),

current_events as (
    select
        md5(source || ':' || source_event_id) as event_key,
        source,
        source_event_id,
        event_type,
        event_detail,
        occurred_at,
        customer_key,
        touchpoint,
        channel,
        interaction,
        direction,
        journey_stage,
        is_touchpoint,
        is_unmapped,
        false as is_removed
    from classified
),

{% if is_incremental() %}
restaged_crm_events as (
    -- every event a HubSpot object staged since the watermark could have made before
    select 'contact:' || contact_id as source_event_id from contacts where _loaded_at > {{ watermark() }}
    union all select 'call:' || call_id from calls where _loaded_at > {{ watermark() }}
    union all select 'meeting:' || meeting_id from meetings where _loaded_at > {{ watermark() }}
    union all select 'crm_email:' || crm_email_id from crm_emails where _loaded_at > {{ watermark() }}
    union all select 'deal_created:' || deal_id from deals where _loaded_at > {{ watermark() }}
    union all select 'deal_closed_won:' || deal_id from deals where _loaded_at > {{ watermark() }}
    union all select 'ticket:' || ticket_id from tickets where _loaded_at > {{ watermark() }}
    union all select 'feedback:' || feedback_id from feedback where _loaded_at > {{ watermark() }}
    union all select 'note:' || note_id from notes where _loaded_at > {{ watermark() }}
    union all select 'task:' || task_id from tasks where _loaded_at > {{ watermark() }}
    union all select 'message:' || message_id from conversation_messages
),

removed_events as (
    -- ... and that it no longer makes
    select
        stored.event_key, stored.source, stored.source_event_id, stored.event_type, stored.event_detail,
        stored.occurred_at, stored.customer_key, stored.touchpoint, stored.channel, stored.interaction,
        stored.direction, stored.journey_stage, stored.is_touchpoint, stored.is_unmapped,
        true as is_removed
    from stored
    where stored.event_key in (select md5('crm:' || source_event_id) from restaged_crm_events)
      and not stored.is_removed
      and not exists (select 1 from current_events where current_events.event_key = stored.event_key)
),

candidates as (
    select * from current_events
    union all
    select * from removed_events
),

final as (
    select
        candidates.*,
        case when stored.customer_key is not null and stored.customer_key is distinct from candidates.customer_key
             then array_append(stored.former_customer_keys, stored.customer_key)
             else coalesce(stored.former_customer_keys, '{}') end as former_customer_keys,
        case when stored.occurred_at is not null and stored.occurred_at is distinct from candidates.occurred_at
             then array_append(stored.former_occurred_ats, stored.occurred_at)
             else coalesce(stored.former_occurred_ats, '{}') end as former_occurred_ats,
        coalesce(stored._inserted_at, now()) as _inserted_at,
        now() as _updated_at
    from candidates
    left join stored using (event_key)
    where stored.event_key is null
       or (stored.source_event_id, stored.event_type, stored.event_detail, stored.occurred_at,
           stored.customer_key, stored.touchpoint, stored.channel, stored.interaction, stored.direction,
           stored.journey_stage, stored.is_touchpoint, stored.is_unmapped, stored.is_removed)
          is distinct from
          (candidates.source_event_id, candidates.event_type, candidates.event_detail, candidates.occurred_at,
           candidates.customer_key, candidates.touchpoint, candidates.channel, candidates.interaction,
           candidates.direction, candidates.journey_stage, candidates.is_touchpoint, candidates.is_unmapped,
           candidates.is_removed)
)
{% else %}
final as (
    select
        current_events.*,
        '{}'::text[] as former_customer_keys,
        '{}'::timestamptz[] as former_occurred_ats,
        now() as _inserted_at,
        now() as _updated_at
    from current_events
)
{% endif %}

select * from final
