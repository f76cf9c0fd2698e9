{#-
    Streaming windows with comparisons to the symbol's previous window (ordered by
    window_start_at; gaps such as overnight are simply skipped) and rule-based labels.
    Thresholds are project vars (dbt_project.yml):
    * momentum_signal: ma_spread_pct = 100 * (ma_15m - ma_1h) / ma_1h;
      BULLISH if >= momentum_threshold_pct, BEARISH if <= -momentum_threshold_pct,
      NEUTRAL otherwise (UNKNOWN when either average is missing).
    * volatility_regime on volatility_15m_pct = 100 * volatility_15m / ma_15m:
      LOW < volatility_low_max_pct <= NORMAL < volatility_normal_max_pct <= ELEVATED
      < volatility_elevated_max_pct <= HIGH (UNKNOWN when missing).
    * is_volume_spike: volume_15m > volume_spike_multiplier x the mean volume of the
      previous volume_baseline_windows windows (at least one previous window required).
    * alert_count: active conditions among {momentum not NEUTRAL/UNKNOWN, regime ELEVATED
      or HIGH, volume spike}; is_multi_signal_alert when at least two coincide.
-#}
{%- set baseline = var('volume_baseline_windows') | int -%}

with windows as (
    select * from {{ ref('stg_realtime_stock_analytics') }}
),

with_previous as (
    select
        *,
        lag(window_close_price) over (
            partition by symbol order by window_start_at
        ) as prev_window_close_price,
        lag(ma_15m) over (partition by symbol order by window_start_at) as prev_ma_15m,
        avg(volume_15m) over (
            partition by symbol order by window_start_at
            rows between {{ baseline }} preceding and 1 preceding
        ) as baseline_volume_15m
    from windows
),

measures as (
    select
        *,
        window_close_price - prev_window_close_price as price_delta,
        100 * {{
            safe_divide('window_close_price - prev_window_close_price', 'prev_window_close_price')
        }} as price_delta_pct,
        ma_15m - prev_ma_15m as ma_15m_delta,
        ma_15m - ma_1h as ma_spread,
        100 * {{ safe_divide('ma_15m - ma_1h', 'ma_1h') }} as ma_spread_pct,
        100 * {{ safe_divide('volatility_15m', 'ma_15m') }} as volatility_15m_pct,
        {{ safe_divide('volume_15m', 'baseline_volume_15m') }} as volume_vs_baseline
    from with_previous
),

labelled as (
    select
        *,
        case
            when ma_spread_pct is null then 'UNKNOWN'
            when ma_spread_pct >= {{ var('momentum_threshold_pct') }} then 'BULLISH'
            when ma_spread_pct <= -{{ var('momentum_threshold_pct') }} then 'BEARISH'
            else 'NEUTRAL'
        end as momentum_signal,
        case
            when volatility_15m_pct is null then 'UNKNOWN'
            when volatility_15m_pct < {{ var('volatility_low_max_pct') }} then 'LOW'
            when volatility_15m_pct < {{ var('volatility_normal_max_pct') }} then 'NORMAL'
            when volatility_15m_pct < {{ var('volatility_elevated_max_pct') }} then 'ELEVATED'
            else 'HIGH'
        end as volatility_regime,
        coalesce(
            volume_15m > {{ var('volume_spike_multiplier') }} * baseline_volume_15m, false
        ) as is_volume_spike
    from measures
),

alerts as (
    select
        *,
        iff(momentum_signal in ('BULLISH', 'BEARISH'), 1, 0)
        + iff(volatility_regime in ('ELEVATED', 'HIGH'), 1, 0)
        + iff(is_volume_spike, 1, 0) as alert_count
    from labelled
),

enriched as (
    select
        symbol,
        window_start_at,
        window_end_at,
        window_open_price,
        window_high_price,
        window_low_price,
        window_close_price,
        prev_window_close_price,
        price_delta,
        price_delta_pct,
        ma_15m,
        ma_1h,
        ma_15m_delta,
        ma_spread,
        ma_spread_pct,
        momentum_signal,
        volatility_15m,
        volatility_15m_pct,
        volatility_regime,
        volume_15m,
        baseline_volume_15m,
        volume_vs_baseline,
        is_volume_spike,
        tick_count,
        alert_count,
        alert_count >= 2 as is_multi_signal_alert,
        loaded_at
    from alerts
)

select * from enriched
