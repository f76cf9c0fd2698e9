{#-
    Null instead of a division-by-zero error when the denominator is 0 or null, so one
    bad row (a zero low price, an empty window) cannot fail a whole model.
-#}
{% macro safe_divide(numerator, denominator) -%}
    ({{ numerator }}) / nullif({{ denominator }}, 0)
{%- endmacro %}
