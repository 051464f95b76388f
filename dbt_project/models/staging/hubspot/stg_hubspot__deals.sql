{{ hubspot_staging_config('hubspot_deals', 'deal_id') }}
with latest as (
    {{ hubspot_latest_versions('hubspot_deals', 'deal_id') }}
),

final as (
    select
        object_id as deal_id,
        {{ hubspot_first_association('contacts') }} as contact_id,
        {{ hubspot_first_association('companies') }} as company_id,
        {{ hubspot_prop('dealname') }} as deal_name,
        ({{ hubspot_prop('amount') }})::numeric as amount,
        upper(coalesce({{ hubspot_prop('deal_currency_code') }}, '{{ var("default_currency") }}')) as currency,
        {{ hubspot_prop('dealstage') }} as deal_stage,
        {{ hubspot_prop('pipeline') }} as pipeline,
        {{ hubspot_prop('dealtype') }} as deal_type,
        {{ hubspot_prop('dealstage') }} = 'closedwon' as is_closed_won,
        {{ hubspot_prop('dealstage') }} in ('closedwon', 'closedlost') as is_closed,
        {{ hubspot_time('closedate') }} as closed_at,
        {{ hubspot_time('createdate') }} as created_at,
        {{ hubspot_prop('hubspot_owner_id') }} as owner_id,
        {{ hubspot_prop('closed_lost_reason') }} as closed_lost_reason,
        event_time as modified_at,
        is_archived,
        _loaded_at
    from latest
)

select * from final
