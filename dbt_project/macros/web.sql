{#- Shared web helpers: what the sessions, the event classification and the traffic mart read
    from a Segment page's URLs, written once so that they agree. -#}

{% macro url_host(url) -%}
    {#- The lower-cased host name of a URL ('https://l.facebook.com/x' -> 'l.facebook.com');
        a value without a scheme is taken whole; null for a null or empty one. -#}
    lower(coalesce(
        substring({{ url }} from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:]+)'),
        nullif({{ url }}, '')
    ))
{%- endmacro %}

{% macro path_prefix(path) -%}
    {#- A page path's first segment, the key of seed landing_page_groups: '/pricing/pro' ->
        '/pricing', '/' -> '/'; null for a null path. -#}
    '/' || split_part(ltrim(lower({{ path }}), '/'), '/', 1)
{%- endmacro %}
