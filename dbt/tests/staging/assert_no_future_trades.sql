-- No bar may be dated after today (UTC); such rows come from a timezone or parsing bug.
select
    symbol,
    trade_date
from {{ ref('stg_daily_stock_metrics') }}
where trade_date > convert_timezone('UTC', current_timestamp())::date
