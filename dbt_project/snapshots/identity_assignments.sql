{% snapshot identity_assignments %}
{{ config(
    schema='snapshots',
    unique_key='identifier_node',
    strategy='check',
    check_cols=['customer_key'],
    post_hook="{{ save_watermark() }}",
) }}
{#- Only the identifiers whose row changed since the snapshot last ran can have a new
    customer_key; the check strategy leaves identifiers missing from its source untouched (it
    ignores hard deletes), so feeding it those rows alone gives the same history as feeding it
    all of them. Before the first run, or without a saved watermark, it reads everything. -#}
select * from {{ ref('int_identifiers_mapped') }}
{%- if execute and adapter.get_relation(this.database, this.schema, this.identifier) is not none %}
where _updated_at > {{ saved_watermark() }}
{%- endif %}
{% endsnapshot %}
