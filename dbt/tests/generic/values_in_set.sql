{#
    Rows whose value is not one of `values`. Unlike the built-in accepted_values, nulls
    fail unless allow_null=true, so a label column cannot silently go missing.
#}
{% test values_in_set(model, column_name, values, allow_null=false) %}
    select {{ column_name }} as failing_value
    from {{ model }}
    where
        ({{ column_name }} is null and not {{ 'true' if allow_null else 'false' }})
        or {{ column_name }} not in ('{{ values | join("', '") }}')
{% endtest %}
