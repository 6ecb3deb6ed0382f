//! The money of a sale: credits are priced per tonne (one credit) and sold by the kilogram;
//! amounts are money with 2 decimals, rounded half away from zero once per line; the platform
//! fee is charged to each side (SPEC §6, default 2.5 %). Every figure here balances: what the
//! buyer pays equals what the seller receives plus both fees.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Money: 2 decimals, half away from zero.
pub fn money(d: Decimal) -> Decimal {
    let mut m = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    m.rescale(2);
    m
}

/// Fee rates of each side, as fractions (0.025 = 2.5 %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fees {
    pub buyer_rate: Decimal,
    pub seller_rate: Decimal,
}

impl Fees {
    /// The fee rates as stored (trailing zeros dropped).
    pub fn new(buyer_rate: Decimal, seller_rate: Decimal) -> Fees {
        Fees {
            buyer_rate: buyer_rate.normalize(),
            seller_rate: seller_rate.normalize(),
        }
    }
}

impl Default for Fees {
    fn default() -> Self {
        Fees {
            buyer_rate: Decimal::new(25, 3),
            seller_rate: Decimal::new(25, 3),
        }
    }
}

impl Fees {
    /// Both rates between 0 and 20 %.
    pub fn validate(&self) -> Result<(), String> {
        let max = Decimal::new(2, 1);
        for (side, r) in [("buyer", self.buyer_rate), ("seller", self.seller_rate)] {
            if r < Decimal::ZERO || r > max {
                return Err(format!("The {side} fee must be between 0 % and 20 %."));
            }
        }
        Ok(())
    }
}

/// The money lines of buying `kg` kilograms at `price_per_t` per tonne.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Settlement {
    /// price × quantity, rounded to the cent.
    pub amount: Decimal,
    pub buyer_fee: Decimal,
    pub seller_fee: Decimal,
    /// amount + buyer fee: what leaves the buyer's wallet.
    pub buyer_pays: Decimal,
    /// amount − seller fee: what reaches the seller's wallet.
    pub seller_receives: Decimal,
}

impl Settlement {
    pub fn new(price_per_t: Decimal, kg: i64, fees: Fees) -> Settlement {
        let amount = money(price_per_t * Decimal::from(kg) / Decimal::from(1000));
        let buyer_fee = money(amount * fees.buyer_rate);
        let seller_fee = money(amount * fees.seller_rate).min(amount);
        Settlement {
            amount,
            buyer_fee,
            seller_fee,
            buyer_pays: amount + buyer_fee,
            seller_receives: amount - seller_fee,
        }
    }

    /// What the platform keeps.
    pub fn fees(&self) -> Decimal {
        self.buyer_fee + self.seller_fee
    }
}

/// Why a quantity cannot be bought from a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuantityProblem {
    NotPositive,
    BelowMinimumLot { minimum_kg: i64 },
    MoreThanLeft { left_kg: i64 },
}

impl QuantityProblem {
    pub fn message(&self) -> String {
        match self {
            QuantityProblem::NotPositive => "Enter a quantity of at least 1 kg.".into(),
            QuantityProblem::BelowMinimumLot { minimum_kg } => {
                format!("The smallest lot of this listing is {minimum_kg} kg.")
            }
            QuantityProblem::MoreThanLeft { left_kg } => {
                format!("Only {left_kg} kg are left in this listing.")
            }
        }
    }
}

/// Checks a purchase quantity against a listing: at least the minimum lot (or everything left,
/// when less than a lot remains) and at most what is left.
pub fn check_quantity(kg: i64, minimum_lot_kg: i64, left_kg: i64) -> Result<(), QuantityProblem> {
    if kg <= 0 {
        return Err(QuantityProblem::NotPositive);
    }
    if kg > left_kg {
        return Err(QuantityProblem::MoreThanLeft { left_kg });
    }
    if kg < minimum_lot_kg && kg != left_kg {
        return Err(QuantityProblem::BelowMinimumLot {
            minimum_kg: minimum_lot_kg,
        });
    }
    Ok(())
}

/// A price that rose between the page the buyer saw and their click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRose {
    pub seen: Decimal,
    pub now: Decimal,
}

impl PriceRose {
    pub fn message(&self, money: impl Fn(Decimal) -> String) -> String {
        format!(
            "The price changed from {} to {} per tonne since you opened the page; nothing was bought. Check the new price and buy again if it suits you.",
            money(self.seen),
            money(self.now)
        )
    }
}

/// A purchase goes through at no more than the price per tonne its buyer saw: a price raised
/// since (the seller repricing between the page and the click) is refused; a lower one is the
/// buyer's gain and goes through at the lower price.
pub fn check_price_seen(seen: Decimal, now: Decimal) -> Result<(), PriceRose> {
    if now > seen {
        Err(PriceRose { seen, now })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn a_worked_example() {
        // 1,250 kg at 180,000.00 per tonne = 225,000.00; 2.5 % each side = 5,625.00.
        let s = Settlement::new(dec("180000.00"), 1250, Fees::default());
        assert_eq!(s.amount, dec("225000.00"));
        assert_eq!(s.buyer_fee, dec("5625.00"));
        assert_eq!(s.buyer_pays, dec("230625.00"));
        assert_eq!(s.seller_receives, dec("219375.00"));
        assert_eq!(s.fees(), dec("11250.00"));
    }

    #[test]
    fn cents_round_half_away_from_zero() {
        // 1 kg at 10.01 per tonne = 0.01001 → 0.01; fee 2.5 % of 0.01 = 0.00025 → 0.00.
        let s = Settlement::new(dec("10.01"), 1, Fees::default());
        assert_eq!((s.amount, s.buyer_fee), (dec("0.01"), dec("0.00")));
        // 3 kg at 5.00 = 0.015 → 0.02.
        assert_eq!(
            Settlement::new(dec("5.00"), 3, Fees::default()).amount,
            dec("0.02")
        );
        assert_eq!(money(dec("2.345")).to_string(), "2.35");
        assert_eq!(money(dec("7")).to_string(), "7.00");
    }

    #[test]
    fn quantities_respect_the_lot_and_what_is_left() {
        assert_eq!(check_quantity(100, 100, 500), Ok(()));
        assert_eq!(
            check_quantity(0, 100, 500),
            Err(QuantityProblem::NotPositive)
        );
        assert_eq!(
            check_quantity(99, 100, 500),
            Err(QuantityProblem::BelowMinimumLot { minimum_kg: 100 })
        );
        assert_eq!(
            check_quantity(501, 100, 500),
            Err(QuantityProblem::MoreThanLeft { left_kg: 500 })
        );
        // The last 40 kg of a listing with 100 kg lots can still be bought.
        assert_eq!(check_quantity(40, 100, 40), Ok(()));
        assert_eq!(
            QuantityProblem::MoreThanLeft { left_kg: 40 }.message(),
            "Only 40 kg are left in this listing."
        );
    }

    #[test]
    fn a_purchase_never_costs_more_per_tonne_than_was_seen() {
        assert_eq!(check_price_seen(dec("100000.00"), dec("100000.00")), Ok(()));
        assert_eq!(check_price_seen(dec("100000.00"), dec("90000.00")), Ok(()));
        let rose = check_price_seen(dec("100000.00"), dec("10000000.00")).unwrap_err();
        assert_eq!(
            rose.message(|v| crate::domain::market::format_money(v, "VND")),
            "The price changed from 100.000 ₫ to 10.000.000 ₫ per tonne since you opened the page; nothing was bought. Check the new price and buy again if it suits you."
        );
    }

    #[test]
    fn fee_rates_are_bounded() {
        assert_eq!(Fees::default().validate(), Ok(()));
        let high = Fees {
            buyer_rate: dec("0.21"),
            seller_rate: dec("0.01"),
        };
        assert!(high.validate().unwrap_err().contains("buyer"));
    }

    proptest! {
        /// Money is conserved to the cent: buyer pays = seller receives + fees; nobody pays a
        /// negative amount and the seller never owes more than the sale.
        #[test]
        fn settlements_balance(
            price_cents in 1i64..1_000_000_000,
            kg in 1i64..10_000_000,
            buyer_bp in 0i64..2000,
            seller_bp in 0i64..2000,
        ) {
            let fees = Fees { buyer_rate: Decimal::new(buyer_bp, 4), seller_rate: Decimal::new(seller_bp, 4) };
            let s = Settlement::new(Decimal::new(price_cents, 2), kg, fees);
            prop_assert_eq!(s.buyer_pays, s.seller_receives + s.fees());
            prop_assert!(s.seller_receives >= Decimal::ZERO);
            prop_assert!(s.buyer_fee >= Decimal::ZERO && s.seller_fee >= Decimal::ZERO);
            for v in [s.amount, s.buyer_fee, s.seller_fee, s.buyer_pays, s.seller_receives] {
                prop_assert_eq!(v.scale(), 2);
            }
        }
    }
}
