{#-
    Rows whose value is not one of `values`. Unlike the built-in accepted_values, nulls
    fail unless allow_null=true, so a label column cannot silently go missing.
-#}
{% test values_in_set(model, column_name, values, allow_null=false) %}

select {{ column_name }} as failing_value
from {{ model }}
where
    {%- if allow_null %}
        {{ column_name }} is not null and
    {%- else %}
        {{ column_name }} is null or
    {%- endif %}
    {{ column_name }} not in (
        {%- for value in values %}
            '{{ value }}'{{ ',' if not loop.last }}
        {%- endfor %}
    )

{% endtest %}
