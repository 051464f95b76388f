{#- A pseudonymous key for an identifier: SHA-256 of the deployment's secret
    (privacy.pseudonym_key, generated once per warehouse) and the text, 32 hex digits. Whoever
    guesses an email cannot confirm which key it is without the secret, which only the
    transformer reads; the same text gives the same key in every build of one warehouse.
    The secret is read by an uncorrelated subquery: evaluated once per statement. -#}
{% macro keyed_hash(expression) -%}
    left(encode(sha256(convert_to(
        (select secret from {{ source('privacy', 'pseudonym_key') }}) || ':' || ({{ expression }}),
        'UTF8')), 'hex'), 32)
{%- endmacro %}
