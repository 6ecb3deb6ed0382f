//! The price suggestion (SPEC §9): what a tonne of one region and vintage should sell for,
//! from the platform's own trades. Deterministic — the same trades and the same day always give
//! the same answer — and explainable:
//!
//! - Comparable trades: the same region and vintage in the last year; with fewer than
//!   `MIN_TRADES`, the same region with vintages one year either side.
//! - Each trade weighs its tonnes, discounted by age: a trade `d` days old counts
//!   `1 / (1 + d / 30)` as much as one today (30 days: half, 90 days: a quarter).
//! - The suggestion is the weighted median price; the band runs from the weighted 20th to the
//!   80th percentile. All three are prices people actually paid.
//! - Back-test: each of the latest (up to 30) comparable trades is "predicted" from the trades
//!   before it; the error is the mean of |predicted − paid| / paid.
//! - Too few trades: a clearly labelled rule-based default — the weighted median of every trade
//!   of the last year on the platform, or a fixed starting price when there are none — with a
//!   band of ±20 %.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Fewer comparable trades than this: the rule-based default.
pub const MIN_TRADES: usize = 5;
/// Trades older than this are not used.
pub const LOOKBACK_DAYS: i64 = 365;
const BACKTEST_MAX: usize = 30;

/// One completed trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub day: NaiveDate,
    pub price_per_t: Decimal,
    pub kg: i64,
    pub region: String,
    pub vintage: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub region: String,
    pub vintage: i32,
    pub price_per_t: Decimal,
    pub low: Decimal,
    pub high: Decimal,
    /// The trades it rests on (0 for the fixed starting price).
    pub trades: usize,
    /// Which trades: "VN 2026 trades of the last year", or why the rule applies.
    pub basis: String,
    /// The rule-based default, not a market estimate.
    pub rule_based: bool,
    /// Mean absolute error of the back-test, in percent (None: too little history).
    pub backtest_error_percent: Option<Decimal>,
    pub backtest_trades: usize,
}

/// A starting price per tonne when the platform has no trades at all.
pub fn starting_price(currency: &str) -> Decimal {
    match currency {
        "VND" => Decimal::from(200_000),
        "JPY" | "KRW" => Decimal::from(2_000),
        _ => Decimal::from(10),
    }
}

fn weight(t: &Trade, today: NaiveDate) -> Decimal {
    let age = (today - t.day).num_days().max(0);
    Decimal::from(t.kg) * Decimal::from(30) / Decimal::from(30 + age)
}

/// The weighted `q`-quantile (0–1) of the trades' prices.
fn quantile(trades: &[&Trade], today: NaiveDate, q: Decimal) -> Decimal {
    let mut sorted: Vec<(Decimal, Decimal)> = trades
        .iter()
        .map(|t| (t.price_per_t, weight(t, today)))
        .collect();
    sorted.sort();
    let total: Decimal = sorted.iter().map(|s| s.1).sum();
    let mut seen = Decimal::ZERO;
    for (price, w) in &sorted {
        seen += w;
        if seen >= total * q {
            return *price;
        }
    }
    sorted.last().map(|s| s.0).unwrap_or_default()
}

fn recent<'a>(trades: &'a [Trade], today: NaiveDate) -> impl Iterator<Item = &'a Trade> {
    trades
        .iter()
        .filter(move |t| t.day <= today && (today - t.day).num_days() <= LOOKBACK_DAYS)
}

/// The comparable trades as of `today` and what they are, or None when too few.
fn comparable<'a>(
    trades: &'a [Trade],
    region: &str,
    vintage: i32,
    today: NaiveDate,
) -> Option<(Vec<&'a Trade>, String)> {
    let same: Vec<&Trade> = recent(trades, today)
        .filter(|t| t.region == region && t.vintage == vintage)
        .collect();
    if same.len() >= MIN_TRADES {
        return Some((same, format!("{region} {vintage} trades of the last year")));
    }
    let near: Vec<&Trade> = recent(trades, today)
        .filter(|t| t.region == region && (t.vintage - vintage).abs() <= 1)
        .collect();
    if near.len() >= MIN_TRADES {
        return Some((
            near,
            format!(
                "{region} trades of vintages {}–{} of the last year (too few of {vintage} alone)",
                vintage - 1,
                vintage + 1
            ),
        ));
    }
    None
}

/// The suggestion for one region and vintage on `today`.
pub fn suggest(
    trades: &[Trade],
    region: &str,
    vintage: i32,
    today: NaiveDate,
    currency: &str,
) -> Suggestion {
    let (price, low, high, count, basis, rule_based) = match comparable(
        trades, region, vintage, today,
    ) {
        Some((set, basis)) => (
            quantile(&set, today, Decimal::new(5, 1)),
            quantile(&set, today, Decimal::new(2, 1)),
            quantile(&set, today, Decimal::new(8, 1)),
            set.len(),
            basis,
            false,
        ),
        None => {
            let all: Vec<&Trade> = recent(trades, today).collect();
            let (price, count, basis) = if all.is_empty() {
                (
                        starting_price(currency),
                        0,
                        format!(
                            "Rule-based default: the platform's starting price, since it has no trades yet (fewer than {MIN_TRADES} of {region} {vintage})."
                        ),
                    )
            } else {
                (
                        quantile(&all, today, Decimal::new(5, 1)),
                        all.len(),
                        format!(
                            "Rule-based default: the median of every trade on the platform in the last year, since fewer than {MIN_TRADES} were of {region} {vintage}."
                        ),
                    )
            };
            let spread = price * Decimal::new(2, 1);
            (
                price,
                (price - spread).round_dp(2),
                (price + spread).round_dp(2),
                count,
                basis,
                true,
            )
        }
    };
    let (error, points) = backtest(trades, region, vintage, today);
    Suggestion {
        region: region.to_owned(),
        vintage,
        price_per_t: price,
        low,
        high,
        trades: count,
        basis,
        rule_based,
        backtest_error_percent: error,
        backtest_trades: points,
    }
}

/// How far a price may stray from the suggestion before the platform asks whether it is meant:
/// a listing price below half or above double the suggested price, a bid above double. Wide
/// enough for ordinary pricing (the band is ±20 % when rule-based, the 20th–80th percentile of
/// real trades otherwise), narrow enough to catch an amount typed ten or a thousand times too
/// small or too large.
pub const FAR_FACTOR: i64 = 2;

/// Which side of the suggestion a far price is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Far {
    Below,
    Above,
}

impl Suggestion {
    /// Whether a seller's price per tonne is far from this suggestion: below half of it or
    /// above double (half and double themselves are not far).
    pub fn far_listing_price(&self, price: Decimal) -> Option<Far> {
        let factor = Decimal::from(FAR_FACTOR);
        if price * factor < self.price_per_t {
            Some(Far::Below)
        } else if price > self.price_per_t * factor {
            Some(Far::Above)
        } else {
            None
        }
    }

    /// Whether a bidder's maximum is far above what the lot is worth: more than double both
    /// this suggestion and the least bid the auction takes now. Only too high counts: a low bid
    /// costs the bidder nothing (the auction refuses one below its minimum by itself), and
    /// bidding up to double where the auction already stands is ordinary bidding, whatever the
    /// suggestion.
    pub fn far_bid(&self, max: Decimal, minimum_bid: Decimal) -> bool {
        max > self.price_per_t.max(minimum_bid) * Decimal::from(FAR_FACTOR)
    }

    /// What a seller is told of a listing price far from this suggestion.
    pub fn listing_warning(
        &self,
        price: Decimal,
        far: Far,
        money: impl Fn(Decimal) -> String,
    ) -> String {
        format!(
            "{} per tonne is {} the suggested price of {} for {} {} credits: check the amount before listing at it.",
            money(price),
            match far {
                Far::Below => "less than half",
                Far::Above => "more than double",
            },
            money(self.price_per_t),
            self.region,
            self.vintage
        )
    }

    /// What a bidder is told of a maximum far above this suggestion (see `far_bid`).
    pub fn bid_warning(
        &self,
        max: Decimal,
        minimum_bid: Decimal,
        money: impl Fn(Decimal) -> String,
    ) -> String {
        format!(
            "A maximum of {} per tonne is more than double the suggested price of {} for {} {} credits and the {} this auction takes now; leading, you may pay up to it. Check the amount before bidding it.",
            money(max),
            money(self.price_per_t),
            self.region,
            self.vintage,
            money(minimum_bid)
        )
    }
}

/// Predicts each of the latest comparable trades from the trades before it (as of its day);
/// answers the mean absolute error in percent and how many trades were predicted.
fn backtest(
    trades: &[Trade],
    region: &str,
    vintage: i32,
    today: NaiveDate,
) -> (Option<Decimal>, usize) {
    let mut targets: Vec<&Trade> = recent(trades, today)
        .filter(|t| t.region == region && (t.vintage - vintage).abs() <= 1)
        .collect();
    targets.sort_by_key(|t| (t.day, t.price_per_t, t.kg, t.vintage));
    // Every trade by day once; what was known before a day is then a prefix of it.
    let mut by_day: Vec<Trade> = trades.to_vec();
    by_day.sort_by_key(|t| t.day);
    let mut errors = Vec::new();
    for target in targets.iter().rev() {
        if errors.len() == BACKTEST_MAX {
            break;
        }
        let before = &by_day[..by_day.partition_point(|t| t.day < target.day)];
        if let Some((set, _)) = comparable(before, &target.region, target.vintage, target.day) {
            let predicted = quantile(&set, target.day, Decimal::new(5, 1));
            if !target.price_per_t.is_zero() {
                errors.push((predicted - target.price_per_t).abs() / target.price_per_t);
            }
        }
    }
    if errors.is_empty() {
        return (None, 0);
    }
    let mean = errors.iter().copied().sum::<Decimal>() / Decimal::from(errors.len());
    (Some((mean * Decimal::from(100)).round_dp(1)), errors.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap() - chrono::Duration::days(n)
    }

    fn trade(days_ago: i64, price: i64, kg: i64, vintage: i32) -> Trade {
        Trade {
            day: day(days_ago),
            price_per_t: Decimal::from(price),
            kg,
            region: "VN".into(),
            vintage,
        }
    }

    #[test]
    fn the_weighted_median_of_comparable_trades_with_a_band() {
        let trades: Vec<Trade> = [
            (1, 200_000),
            (2, 210_000),
            (3, 190_000),
            (5, 205_000),
            (8, 195_000),
            (200, 100_000),
        ]
        .iter()
        .map(|(d, p)| trade(*d, *p, 1_000, 2026))
        .collect();
        let s = suggest(&trades, "VN", 2026, day(0), "VND");
        assert!(!s.rule_based);
        assert_eq!(s.trades, 6);
        assert_eq!(s.price_per_t, Decimal::from(200_000));
        assert_eq!(
            (s.low, s.high),
            (Decimal::from(190_000), Decimal::from(210_000))
        );
        assert_eq!(s.basis, "VN 2026 trades of the last year");
    }

    #[test]
    fn recent_trades_outweigh_old_ones() {
        // Five old cheap trades, five recent dear ones of the same size.
        let mut trades: Vec<Trade> = (0..5)
            .map(|i| trade(300 + i, 100_000, 1_000, 2026))
            .collect();
        trades.extend((0..5).map(|i| trade(i, 180_000, 1_000, 2026)));
        assert_eq!(
            suggest(&trades, "VN", 2026, day(0), "VND").price_per_t,
            Decimal::from(180_000)
        );
    }

    #[test]
    fn too_few_trades_give_a_labelled_rule_based_default() {
        let none = suggest(&[], "VN", 2026, day(0), "VND");
        assert!(none.rule_based);
        assert_eq!(none.price_per_t, Decimal::from(200_000));
        assert_eq!(
            (none.low, none.high),
            (Decimal::from(160_000), Decimal::from(240_000))
        );
        assert!(none.basis.starts_with("Rule-based default"));
        assert_eq!(none.backtest_error_percent, None);

        let other: Vec<Trade> = (0..3).map(|i| trade(i, 150_000, 500, 2020)).collect();
        let s = suggest(&other, "VN", 2026, day(0), "VND");
        assert!(s.rule_based);
        assert_eq!((s.price_per_t, s.trades), (Decimal::from(150_000), 3));
    }

    #[test]
    fn neighbouring_vintages_fill_in_and_the_backtest_measures_the_error() {
        // A steady market at 200,000 with one outlier: predictions from the median stay at 200,000.
        let mut trades: Vec<Trade> = (0..12)
            .map(|i| trade(40 - 3 * i, 200_000, 1_000, 2025))
            .collect();
        trades.push(trade(1, 250_000, 1_000, 2025));
        let s = suggest(&trades, "VN", 2026, day(0), "VND");
        assert!(!s.rule_based);
        assert!(s.basis.contains("vintages 2025–2027"), "{}", s.basis);
        assert_eq!(s.price_per_t, Decimal::from(200_000));
        // 8 trades had 5 before them: seven exact, the outlier off by 50,000 / 250,000 = 20 %.
        assert_eq!(s.backtest_trades, 8);
        assert_eq!(s.backtest_error_percent, Some(Decimal::new(25, 1)));
    }

    #[test]
    fn prices_far_from_the_suggestion_are_told_apart() {
        let s = suggest(&[], "VN", 2026, day(0), "VND");
        let d = |n: i64| Decimal::from(n);
        for (price, far) in [
            (215, Some(Far::Below)),
            (99_999, Some(Far::Below)),
            (100_000, None),
            (215_000, None),
            (400_000, None),
            (400_001, Some(Far::Above)),
            (2_150_000, Some(Far::Above)),
        ] {
            assert_eq!(s.far_listing_price(d(price)), far, "{price}");
        }
        // A bid is far above only beyond double both the suggestion and the auction's minimum.
        assert!(!s.far_bid(d(400_000), d(100_000)));
        assert!(s.far_bid(d(400_001), d(100_000)));
        assert!(!s.far_bid(d(900_000), d(450_000)));
        assert!(s.far_bid(d(900_001), d(450_000)));
        let money = |v: Decimal| crate::domain::market::format_money(v, "VND");
        assert_eq!(
            s.listing_warning(d(215), Far::Below, money),
            "215 ₫ per tonne is less than half the suggested price of 200.000 ₫ for VN 2026 credits: check the amount before listing at it."
        );
    }

    proptest! {
        #[test]
        fn the_same_trades_always_give_the_same_answer_inside_the_band(
            raw in proptest::collection::vec((0i64..400, 50_000i64..400_000, 1i64..5_000, 2024i32..2027), 0..40)
        ) {
            let trades: Vec<Trade> = raw.iter().map(|(d, p, kg, v)| trade(*d, *p, *kg, *v)).collect();
            let mut shuffled = trades.clone();
            shuffled.reverse();
            let a = suggest(&trades, "VN", 2026, day(0), "VND");
            let b = suggest(&shuffled, "VN", 2026, day(0), "VND");
            prop_assert_eq!(&a, &b);
            prop_assert!(a.low <= a.price_per_t && a.price_per_t <= a.high);
        }
    }
}
