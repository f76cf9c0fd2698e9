{#-
    Day-over-day price changes per symbol. "Previous" means the previous trading row of
    the same symbol (weekends/holidays have no rows), so Monday compares to Friday.
    All *_pct columns are percentages: 1.5 means +1.5 %.
-#}
with daily_bars as (
    select * from {{ ref('stg_daily_stock_metrics') }}
),

with_previous as (
    select
        *,
        row_number() over (partition by symbol order by trade_date) as trading_day_number,
        lag(close_price) over (partition by symbol order by trade_date) as prev_close_price
    from daily_bars
),

returns as (
    select
        symbol,
        trade_date,
        trading_day_number,
        open_price,
        high_price,
        low_price,
        close_price,
        volume,
        prev_close_price,
        close_price - prev_close_price as price_change,
        100 * ({{ safe_divide('close_price', 'prev_close_price') }} - 1) as daily_return_pct,
        100 * ({{ safe_divide('open_price', 'prev_close_price') }} - 1) as overnight_gap_pct,
        100 * {{ safe_divide('high_price - low_price', 'low_price') }} as intraday_range_pct,
        loaded_at
    from with_previous
)

select * from returns
