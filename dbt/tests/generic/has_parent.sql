{#
    Referential integrity: every non-null `column_name` exists in `to`.`field`
    (the built-in `relationships`, plus an optional filter on the child rows).
#}
{% test has_parent(model, column_name, to, field, child_where='true') %}
    with child as (
        select {{ column_name }} as child_key
        from {{ model }}
        where {{ column_name }} is not null and ({{ child_where }})
    ),

    parent as (
        select {{ field }} as parent_key
        from {{ to }}
    )

    select child.child_key
    from child
    left join parent
        on child.child_key = parent.parent_key
    where parent.parent_key is null
{% endtest %}
