{% macro email_campaign(relation_alias=none) -%}
    {#- The campaign an email belongs to, one rule for every model: the campaign id the sender
        tags the message and its links with (unique argument campaign_id, the links' utm_campaign,
        so an email's and a visit's credit to one campaign add up), else the newsletter issue
        (newsletter_issue), else the SendGrid category; null when it carries none of them. -#}
    {%- set p = relation_alias ~ '.' if relation_alias else '' -%}
    coalesce({{ p }}campaign_id, {{ p }}newsletter_issue, nullif({{ p }}category, ''))
{%- endmacro %}
