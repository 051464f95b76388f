{% macro email_campaign(relation_alias=none) -%}
    {#- The campaign an email belongs to, one rule for every model: the newsletter issue (unique
        argument newsletter_issue), else the campaign id the sender passed (campaign_id), else
        the SendGrid category; null when the message carries none of them. -#}
    {%- set p = relation_alias ~ '.' if relation_alias else '' -%}
    coalesce({{ p }}newsletter_issue, {{ p }}campaign_id, nullif({{ p }}category, ''))
{%- endmacro %}
