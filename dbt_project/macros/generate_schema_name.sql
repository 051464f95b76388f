{#- Use the layer's schema name as is (staging, intermediate, marts, seeds), not
    target_schema + '_' + custom, so analysts find `marts.fct_touchpoints`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
