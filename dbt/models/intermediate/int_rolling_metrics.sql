{#-
    Rolling technical indicators per symbol over trading rows (not calendar days).

    * SMA n: mean close of the last n rows including today; null until n rows exist.
    * volatility_20d_pct: stddev_samp of the last 20 daily returns (in %); null until 20
      returns exist. Annualised = that * sqrt(252).
    * 52-week high/low: max(high) / min(low) over the last 252 rows including today; null
      until 252 rows exist. pct_of_52w_range = 100 * (close - low) / (high - low).
    * RSI-14 (Wilder): changes d_k = close_k - close_{k-1} (k = 2..n), gain = max(d, 0),
      loss = max(-d, 0). The first average (row 15) is the mean of the 14 first changes;
      then avg_n = (13 * avg_{n-1} + x_n) / 14. Unrolling the recursion gives the exact
      closed form used here:
          avg_n = 1/14 * sum_{k=2..n} r^(n - max(k, 15)) * x_k,   r = 13/14,
      i.e. a running sum of x_k * r^-max(k,15), rescaled by r^n. A recursive CTE would
      need one iteration per trading day, beyond Snowflake's recursion limit, so we use
      window sums instead. To keep r^-k finite, rows are grouped in epochs of
      var('rsi_epoch_rows') = 2000 rows; exponents are taken relative to the epoch start
      and only the current and previous epoch are summed. Older terms carry weights below
      r^1987 (about 1e-64) and vanish in double precision anyway.
      RSI = 100 - 100 / (1 + avg_gain / avg_loss); 100 when avg_loss = 0, 50 when both are 0.
-#}
{%- set epoch_rows = var('rsi_epoch_rows', 2000) -%}
{#- A FLOAT operand makes Snowflake divide in doubles: `14.0 / 13.0` would be NUMBER
    arithmetic (result scale 7), off by up to ~7e-6 in the RSI (see dbt/README.md). -#}
{%- set ln_14_over_13 = 'ln(cast(14 as float) / 13)' -%}

with daily_returns as (
    select * from {{ ref('int_daily_returns') }}
),

price_changes as (
    select
        *,
        floor(trading_day_number / {{ epoch_rows }}) as rsi_epoch,
        greatest(close_price - prev_close_price, 0) as gain,
        greatest(prev_close_price - close_price, 0) as loss,
        greatest(trading_day_number, 15) as wilder_exponent
    from daily_returns
),

rsi_terms as (
    -- Each change weighted by r^-(max(k, 15) - epoch start); 0 for the first row.
    select
        *,
        exp({{ ln_14_over_13 }} * (wilder_exponent - rsi_epoch * {{ epoch_rows }})) as term_weight,
        exp(-{{ ln_14_over_13 }} * (trading_day_number - rsi_epoch * {{ epoch_rows }}))
            as current_epoch_scale,
        exp(-{{ ln_14_over_13 }} * (trading_day_number - (rsi_epoch - 1) * {{ epoch_rows }}))
            as previous_epoch_scale,
        coalesce(gain, 0) * term_weight as gain_term,
        coalesce(loss, 0) * term_weight as loss_term
    from price_changes
),

rsi_epoch_totals as (
    select
        symbol,
        rsi_epoch,
        sum(gain_term) as gain_total,
        sum(loss_term) as loss_total
    from rsi_terms
    group by symbol, rsi_epoch
),

rsi_running as (
    select
        rsi_terms.*,
        coalesce(previous_epoch.gain_total, 0) as gain_previous_epoch,
        coalesce(previous_epoch.loss_total, 0) as loss_previous_epoch,
        sum(rsi_terms.gain_term) over (
            partition by rsi_terms.symbol, rsi_terms.rsi_epoch
            order by rsi_terms.trading_day_number
            rows between unbounded preceding and current row
        ) as gain_running,
        sum(rsi_terms.loss_term) over (
            partition by rsi_terms.symbol, rsi_terms.rsi_epoch
            order by rsi_terms.trading_day_number
            rows between unbounded preceding and current row
        ) as loss_running
    from rsi_terms
    left join rsi_epoch_totals as previous_epoch
        on
            rsi_terms.symbol = previous_epoch.symbol
            and rsi_terms.rsi_epoch - 1 = previous_epoch.rsi_epoch
),

wilder_averages as (
    select
        *,
        iff(
            trading_day_number >= 15,
            (gain_running * current_epoch_scale + gain_previous_epoch * previous_epoch_scale) / 14,
            null
        ) as avg_gain_14,
        iff(
            trading_day_number >= 15,
            (loss_running * current_epoch_scale + loss_previous_epoch * previous_epoch_scale) / 14,
            null
        ) as avg_loss_14
    from rsi_running
),

window_aggregates as (
    -- Raw trailing aggregates with their input counts; "full window" is decided below.
    select
        *,
        {%- for n in [5, 10, 20, 50] %}
            avg(close_price) over (
                partition by symbol order by trade_date
                rows between {{ n - 1 }} preceding and current row
            ) as close_mean_{{ n }},
            count(close_price) over (
                partition by symbol order by trade_date
                rows between {{ n - 1 }} preceding and current row
            ) as close_count_{{ n }},
        {%- endfor %}
        avg(volume) over (
            partition by symbol order by trade_date
            rows between 19 preceding and current row
        ) as volume_mean_20,
        count(volume) over (
            partition by symbol order by trade_date
            rows between 19 preceding and current row
        ) as volume_count_20,
        stddev_samp(daily_return_pct) over (
            partition by symbol order by trade_date
            rows between 19 preceding and current row
        ) as return_stddev_20,
        count(daily_return_pct) over (
            partition by symbol order by trade_date
            rows between 19 preceding and current row
        ) as return_count_20,
        max(high_price) over (
            partition by symbol order by trade_date
            rows between 251 preceding and current row
        ) as high_max_252,
        min(low_price) over (
            partition by symbol order by trade_date
            rows between 251 preceding and current row
        ) as low_min_252
    from wilder_averages
),

full_windows as (
    select
        symbol,
        trade_date,
        trading_day_number,
        close_price,
        volume,
        {%- for n in [5, 10, 20, 50] %}
            iff(close_count_{{ n }} = {{ n }}, close_mean_{{ n }}, null) as sma_{{ n }}d,
        {%- endfor %}
        iff(volume_count_20 = 20, volume_mean_20, null) as avg_volume_20d,
        iff(return_count_20 = 20, return_stddev_20, null) as volatility_20d_pct,
        iff(trading_day_number >= 252, high_max_252, null) as high_52w,
        iff(trading_day_number >= 252, low_min_252, null) as low_52w,
        avg_gain_14,
        avg_loss_14
    from window_aggregates
),

indicators as (
    select
        symbol,
        trade_date,
        trading_day_number,
        sma_5d,
        sma_10d,
        sma_20d,
        sma_50d,
        avg_volume_20d,
        volatility_20d_pct,
        avg_gain_14,
        avg_loss_14,
        high_52w,
        low_52w,
        lag(sma_20d) over (partition by symbol order by trade_date) as prev_sma_20d,
        lag(sma_50d) over (partition by symbol order by trade_date) as prev_sma_50d,
        {{ safe_divide('volume', 'avg_volume_20d') }} as volume_vs_avg_20d,
        volatility_20d_pct * sqrt(252) as annualised_volatility_pct,
        case
            when avg_loss_14 = 0 and avg_gain_14 = 0 then 50
            when avg_loss_14 = 0 then 100
            else 100 - 100 / (1 + avg_gain_14 / avg_loss_14)
        end as rsi_14,
        100 * {{ safe_divide('close_price - low_52w', 'high_52w - low_52w') }} as pct_of_52w_range
    from full_windows
)

select * from indicators
