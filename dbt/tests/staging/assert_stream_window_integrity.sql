-- Every window lasts exactly 15 minutes and windows of one symbol never overlap.
with windows as (
    select
        symbol,
        window_start_at,
        window_end_at,
        lead(window_start_at) over (
            partition by symbol order by window_start_at
        ) as next_window_start_at
    from {{ ref('stg_realtime_stock_analytics') }}
)

select
    symbol,
    window_start_at,
    window_end_at,
    next_window_start_at
from windows
where
    window_end_at != dateadd('minute', 15, window_start_at)
    or next_window_start_at < window_end_at
