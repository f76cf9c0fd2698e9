-- A bar whose high is below its low (or whose open/close lies outside [low, high]) is corrupt.
select
    symbol,
    trade_date,
    open_price,
    high_price,
    low_price,
    close_price
from {{ ref('stg_daily_stock_metrics') }}
where
    high_price < low_price
    or close_price not between low_price and high_price
    or open_price not between low_price and high_price
