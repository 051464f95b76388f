{#- Free text (a ticket's subject, a survey comment) can name people: a mart shows it only for a
    customer whose consent allows analytics, that is, who has not refused it (unknown is not a
    refusal, as for may_be_named). A text without a customer shows. The columns are classified
    in the YAML (config: meta: classification: free_text) and tests/warehouse/test_roles.py
    checks every such column against this rule. -#}
{% macro analytics_refused(customer_key) -%}
    exists (
        select from {{ ref('dim_customer_consents') }} as refusal
        where refusal.customer_key = {{ customer_key }}
          and refusal.purpose = 'analytics' and refusal.consent_state = 'refused'
    )
{%- endmacro %}
