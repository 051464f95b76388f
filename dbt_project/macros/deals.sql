{% macro deal_pipeline_stages() %}
    {#- The stages of var deal_pipeline_stages as rows: (stage, stage_label, stage_order,
        is_closed_stage, is_won_stage). -#}
    select * from (values
    {%- for stage in var('deal_pipeline_stages') %}
        ('{{ stage.id }}', '{{ stage.label | replace("'", "''") }}', {{ stage.order | int }},
         {{ 'true' if stage.is_closed else 'false' }}, {{ 'true' if stage.is_won else 'false' }})
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
    ) as stages (stage, stage_label, stage_order, is_closed_stage, is_won_stage)
{% endmacro %}
