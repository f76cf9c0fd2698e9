{#
    Rows whose value lies outside [min_value, max_value]. Nulls pass; a missing bound
    compares with null, which is never true, so it checks nothing.
#}
{% test value_in_range(model, column_name, min_value=none, max_value=none) %}
    select {{ column_name }} as failing_value
    from {{ model }}
    where
        {{ column_name }} < {{ 'null' if min_value is none else min_value }}
        or {{ column_name }} > {{ 'null' if max_value is none else max_value }}
{% endtest %}
