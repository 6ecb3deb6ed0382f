//! The soak's reference model: the platform's money and credit rules as a plain struct, no
//! database. Each operation is first *checked* (`&self`: would the platform accept it, and
//! with what figures, or refuse it and how) and, once the real platform acknowledged it,
//! *applied* (`&mut self`). Fees, settlements, quantities, auction rules, the buffer share and
//! which serials move are the pure domain's own functions (`app::domain`), so the model and the
//! platform can only disagree where the services use them wrongly (or not at all).

use app::domain::auction::{self, BidProblem, Increment, Outcome, Placed, State, Terms};
use app::domain::methodology::Methodology;
use app::domain::serial::{self, SerialRange};
use app::domain::trade::{check_price_seen, check_quantity, Fees, Settlement};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

pub type User = usize;
pub type ListingIx = usize;

/// Credits of one grid region and vintage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Class {
    pub region: String,
    pub vintage: i32,
}

impl Class {
    pub fn form(&self) -> String {
        format!("{}:{}", self.region, self.vintage)
    }
}

/// A credit account that holds serials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Acct {
    Available(User),
    Retired(User),
    /// A listing's (or an auction lot's) reserved account.
    Listing(ListingIx),
    BufferPool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Buyer,
}

#[derive(Debug, Clone)]
pub struct UserM {
    pub id: Uuid,
    pub role: Role,
    pub kyc: bool,
    pub money: Decimal,
    pub held: Decimal,
    /// Withdrawals requested and not rejected (all within the last 24 hours).
    pub withdrawn: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fixed,
    Auction,
}

#[derive(Debug, Clone)]
pub struct ListingM {
    pub number: String,
    pub seller: User,
    pub class: Class,
    pub kind: Kind,
    pub listed: i64,
    pub quantity: i64,
    pub sold: i64,
    pub pending: i64,
    pub price: Decimal,
    pub min_lot: i64,
    /// active, sold, cancelled, expired
    pub status: &'static str,
    pub auction: Option<AuctionM>,
}

impl ListingM {
    pub fn left(&self) -> i64 {
        self.quantity - self.sold - self.pending
    }
}

#[derive(Debug, Clone)]
pub struct AuctionM {
    pub terms: Terms,
    pub state: State,
    pub fees: Fees,
    pub leader: Option<User>,
    pub closed: bool,
    pub outcome: Option<&'static str>,
    pub order: Option<String>,
}

#[derive(Debug, Clone)]
pub struct OrderM {
    pub number: String,
    pub listing: ListingIx,
    pub buyer: User,
    pub seller: User,
    pub kg: i64,
    pub price: Decimal,
    pub settlement: Settlement,
    /// completed, cancelled, refunded
    pub status: &'static str,
    pub serials: Vec<SerialRange>,
    pub retired: bool,
    pub dispute: Option<usize>,
    /// A checkout waiting for its payment.
    pub pending: Option<Checkout>,
    /// A checkout's payment, and its status: pending, succeeded, failed or expired.
    pub payment: Option<Uuid>,
    pub payment_status: &'static str,
    /// What the gateway collects for a checkout.
    pub gateway: Decimal,
}

/// What a checkout waiting for its payment holds.
#[derive(Debug, Clone, Copy)]
pub struct Checkout {
    /// The buyer's own money, held.
    pub own: Decimal,
    /// What the gateway collects.
    pub gateway: Decimal,
}

#[derive(Debug, Clone)]
pub struct WithdrawalM {
    pub number: String,
    pub user: User,
    pub amount: Decimal,
    pub fee: Decimal,
    /// pending, paid, rejected
    pub status: &'static str,
}

#[derive(Debug, Clone)]
pub struct DisputeM {
    pub number: String,
    pub order: usize,
    /// open, refunded, rejected
    pub status: &'static str,
    pub returned_kg: Option<i64>,
}

/// The limits the platform's settings set for withdrawals.
#[derive(Debug, Clone, Copy)]
pub struct WithdrawalRules {
    pub min: Decimal,
    pub max: Decimal,
    pub daily_max: Decimal,
    pub fee: Decimal,
}

/// How the platform answers a refused operation (the kind of `AppError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    NotFound,
    Invalid,
    Conflict,
    Funds,
    PriceChanged,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::NotFound => "not_found",
            Refusal::Invalid => "invalid",
            Refusal::Conflict => "conflict",
            Refusal::Funds => "funds",
            Refusal::PriceChanged => "price_changed",
        }
    }
}

pub struct Model {
    pub fees: Fees,
    pub withdrawal: WithdrawalRules,
    pub methodology: Methodology,
    pub max_top_up: Decimal,
    pub users: Vec<UserM>,
    pub listings: Vec<ListingM>,
    pub orders: Vec<OrderM>,
    pub withdrawals: Vec<WithdrawalM>,
    pub disputes: Vec<DisputeM>,
    /// Serials per account, per issuance (keyed by its first serial), coalesced.
    pub serials: BTreeMap<Acct, BTreeMap<i64, Vec<SerialRange>>>,
    /// Every issuance: first serial → (its range, class).
    pub issuances: BTreeMap<i64, (SerialRange, Class)>,
    pub platform_fees: Decimal,
    /// The gateway's clearing account (negative: money that came in through it).
    pub clearing: Decimal,
}

/// What a sale from a listing comes to.
#[derive(Debug, Clone, Copy)]
pub struct SalePlan {
    pub settlement: Settlement,
    pub price: Decimal,
    /// A checkout the wallet does not cover: the gateway is asked for this much.
    pub gateway: Option<Decimal>,
}

/// What a bid comes to.
#[derive(Debug, Clone)]
pub struct BidPlan {
    pub placed: Placed,
    pub buy_now: bool,
}

impl Model {
    pub fn new(
        fees: Fees,
        withdrawal: WithdrawalRules,
        methodology: Methodology,
        max_top_up: Decimal,
    ) -> Model {
        Model {
            fees,
            withdrawal,
            methodology,
            max_top_up,
            users: Vec::new(),
            listings: Vec::new(),
            orders: Vec::new(),
            withdrawals: Vec::new(),
            disputes: Vec::new(),
            serials: BTreeMap::new(),
            issuances: BTreeMap::new(),
            platform_fees: Decimal::ZERO,
            clearing: Decimal::ZERO,
        }
    }

    // ---- serials -------------------------------------------------------------------------

    /// The issuance a serial belongs to (its first serial).
    pub fn issuance_of(&self, serial: i64) -> i64 {
        let (start, (range, _)) = self
            .issuances
            .range(..=serial)
            .next_back()
            .expect("a serial of a known issuance");
        assert!(serial < range.end, "serial {serial} of no issuance");
        *start
    }

    /// Kilograms an account holds (of one class, if given).
    pub fn kg(&self, acct: Acct, class: Option<&Class>) -> i64 {
        self.serials.get(&acct).map_or(0, |by| {
            by.iter()
                .filter(|(i, _)| class.is_none_or(|c| &self.issuances[*i].1 == c))
                .flat_map(|(_, rs)| rs.iter().map(SerialRange::len))
                .sum()
        })
    }

    /// Takes the lowest `kg` serials of `from` (of `class`, if given), as the ledger does
    /// (`serial::take`); None when it holds fewer.
    fn take(&mut self, from: Acct, kg: i64, class: Option<&Class>) -> Option<Vec<SerialRange>> {
        let held: Vec<(usize, SerialRange)> = self
            .serials
            .get(&from)
            .map(|by| {
                by.iter()
                    .filter(|(i, _)| class.is_none_or(|c| &self.issuances[*i].1 == c))
                    .flat_map(|(_, rs)| rs.iter().copied())
                    .enumerate()
                    .collect()
            })
            .unwrap_or_default();
        let takes = serial::take(&held, kg)?;
        let moved: Vec<SerialRange> = takes.iter().map(|t| t.moved).collect();
        self.remove(from, &moved);
        Some(moved)
    }

    /// Removes exactly these serials from an account (every one must be there).
    fn remove(&mut self, from: Acct, ranges: &[SerialRange]) {
        for r in ranges {
            let issuance = self.issuance_of(r.start);
            let list = self
                .serials
                .get_mut(&from)
                .and_then(|by| by.get_mut(&issuance))
                .expect("the account holds the issuance");
            let i = list
                .iter()
                .position(|x| x.start <= r.start && r.end <= x.end)
                .expect("the account holds every serial removed");
            let x = list.remove(i);
            for rest in [
                SerialRange {
                    start: x.start,
                    end: r.start,
                },
                SerialRange {
                    start: r.end,
                    end: x.end,
                },
            ] {
                if !rest.is_empty() {
                    list.push(rest);
                }
            }
            list.sort();
        }
    }

    /// Adds serials to an account, coalesced within each issuance.
    fn put(&mut self, to: Acct, ranges: &[SerialRange]) {
        for r in ranges {
            let issuance = self.issuance_of(r.start);
            assert!(
                r.end <= self.issuances[&issuance].0.end,
                "a range across issuances"
            );
            let list = self
                .serials
                .entry(to)
                .or_default()
                .entry(issuance)
                .or_default();
            list.push(*r);
            *list = serial::coalesce(std::mem::take(list));
        }
    }

    fn move_lowest(
        &mut self,
        from: Acct,
        to: Acct,
        kg: i64,
        class: Option<&Class>,
    ) -> Vec<SerialRange> {
        let moved = self
            .take(from, kg, class)
            .expect("the model checked the quantity");
        self.put(to, &moved);
        moved
    }

    /// The serials of `ranges` that `acct` still holds.
    fn still_held(&self, acct: Acct, ranges: &[SerialRange]) -> Vec<SerialRange> {
        let mut out = Vec::new();
        for r in ranges {
            let Some(list) = self
                .serials
                .get(&acct)
                .and_then(|by| by.get(&self.issuance_of(r.start)))
            else {
                continue;
            };
            for x in list {
                let (start, end) = (x.start.max(r.start), x.end.min(r.end));
                if start < end {
                    out.push(SerialRange::new(start, end));
                }
            }
        }
        out.sort();
        out
    }

    // ---- users and money -----------------------------------------------------------------

    pub fn add_user(&mut self, id: Uuid, role: Role, kyc: bool) -> User {
        self.users.push(UserM {
            id,
            role,
            kyc,
            money: Decimal::ZERO,
            held: Decimal::ZERO,
            withdrawn: Decimal::ZERO,
        });
        self.users.len() - 1
    }

    pub fn user_of(&self, id: Uuid) -> User {
        self.users
            .iter()
            .position(|u| u.id == id)
            .expect("a user of the soak")
    }

    pub fn check_top_up(&self, amount: Decimal) -> Result<(), Refusal> {
        if amount > self.max_top_up {
            return Err(Refusal::Invalid);
        }
        Ok(())
    }

    pub fn apply_top_up(&mut self, u: User, amount: Decimal, paid: bool) {
        if paid {
            self.users[u].money += amount;
            self.clearing -= amount;
        }
    }

    // ---- issuance ------------------------------------------------------------------------

    /// The owner's and the buffer pool's shares of `gross_kg` (the methodology's rule).
    pub fn issuance_split(&self, gross_kg: i64) -> (i64, i64) {
        let i = self.methodology.issuance(Decimal::from(gross_kg));
        let whole = |d: Decimal| i64::try_from(d.trunc()).expect("whole kilograms");
        (whole(i.net_kg), whole(i.buffer_kg))
    }

    /// A CVA approved an issuance of `serials` (the platform's counter drew them): checks they
    /// are new, then mints the owner's share and the pool's, as the issuance does.
    pub fn apply_issuance(
        &mut self,
        owner: User,
        class: Class,
        serials: SerialRange,
    ) -> Result<(), String> {
        if let Some((_, (r, _))) = self.issuances.range(..serials.end).next_back() {
            if r.end > serials.start {
                return Err(format!("issued serials {serials:?} overlap {r:?}"));
            }
        }
        if let Some((_, (r, _))) = self.issuances.range(serials.start..).next() {
            if r.start < serials.end {
                return Err(format!("issued serials {serials:?} overlap {r:?}"));
            }
        }
        let (net, buffer) = self.issuance_split(serials.len());
        self.issuances.insert(serials.start, (serials, class));
        if net > 0 {
            self.put(
                Acct::Available(owner),
                &[SerialRange::new(serials.start, serials.start + net)],
            );
        }
        if buffer > 0 {
            self.put(
                Acct::BufferPool,
                &[SerialRange::new(serials.start + net, serials.end)],
            );
        }
        Ok(())
    }

    // ---- listings ------------------------------------------------------------------------

    pub fn listing_of(&self, number: &str) -> Option<ListingIx> {
        self.listings.iter().position(|l| l.number == number)
    }

    /// Listing (or auctioning) `kg` of `class` needs that much available.
    pub fn check_list(&self, seller: User, class: &Class, kg: i64) -> Result<(), Refusal> {
        if self.kg(Acct::Available(seller), Some(class)) < kg {
            return Err(Refusal::Invalid);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn apply_list(
        &mut self,
        number: String,
        seller: User,
        class: Class,
        kg: i64,
        price: Decimal,
        min_lot: i64,
        auction: Option<AuctionM>,
    ) -> ListingIx {
        let ix = self.listings.len();
        self.listings.push(ListingM {
            number,
            seller,
            class: class.clone(),
            kind: if auction.is_some() {
                Kind::Auction
            } else {
                Kind::Fixed
            },
            listed: kg,
            quantity: kg,
            sold: 0,
            pending: 0,
            price,
            min_lot,
            status: "active",
            auction,
        });
        self.move_lowest(Acct::Available(seller), Acct::Listing(ix), kg, Some(&class));
        ix
    }

    /// The checks of `orders::buy` (`why_not`, then the wallet), in its order.
    pub fn check_buy(
        &self,
        buyer: User,
        l: ListingIx,
        kg: i64,
        expected: Decimal,
        checkout: bool,
    ) -> Result<SalePlan, Refusal> {
        let listing = &self.listings[l];
        if listing.seller == buyer || listing.kind != Kind::Fixed {
            return Err(Refusal::Conflict);
        }
        if listing.status == "sold" || (listing.status == "active" && listing.left() == 0) {
            return Err(Refusal::Conflict);
        }
        if listing.status != "active" {
            return Err(Refusal::Conflict);
        }
        if check_price_seen(expected, listing.price).is_err() {
            return Err(Refusal::PriceChanged);
        }
        if check_quantity(kg, listing.min_lot, listing.left()).is_err() {
            return Err(Refusal::Invalid);
        }
        let settlement = Settlement::new(listing.price, kg, self.fees);
        let money = self.users[buyer].money;
        let gateway = if money >= settlement.buyer_pays {
            None
        } else if checkout {
            Some(settlement.buyer_pays - money)
        } else {
            return Err(Refusal::Funds);
        };
        Ok(SalePlan {
            settlement,
            price: listing.price,
            gateway,
        })
    }

    /// A purchase completed (for a checkout: its payment came in first).
    pub fn apply_sale(
        &mut self,
        number: String,
        buyer: User,
        l: ListingIx,
        kg: i64,
        plan: SalePlan,
        retire: bool,
    ) {
        assert!(plan.gateway.is_none(), "a checkout waits for its payment");
        let listing = &mut self.listings[l];
        listing.sold += kg;
        if listing.sold + listing.pending == listing.quantity && listing.pending == 0 {
            listing.status = "sold";
        }
        let seller = listing.seller;
        self.settle(
            number,
            buyer,
            seller,
            l,
            kg,
            plan.price,
            plan.settlement,
            retire,
        );
    }

    /// Money against credits: the buyer pays, the seller receives, the platform keeps the
    /// fees, the listing's lowest serials go to the buyer; the order is recorded.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        number: String,
        buyer: User,
        seller: User,
        l: ListingIx,
        kg: i64,
        price: Decimal,
        s: Settlement,
        retire: bool,
    ) {
        let serials = self.pay(buyer, seller, l, kg, s, retire);
        self.orders.push(OrderM {
            number,
            listing: l,
            buyer,
            seller,
            kg,
            price,
            settlement: s,
            status: "completed",
            serials,
            retired: retire,
            dispute: None,
            pending: None,
            payment: None,
            payment_status: "",
            gateway: Decimal::ZERO,
        });
    }

    /// Money against credits: the buyer pays, the seller receives, the platform keeps the
    /// fees, the listing's lowest serials go to the buyer (their retired account, if asked);
    /// answers the serials.
    fn pay(
        &mut self,
        buyer: User,
        seller: User,
        l: ListingIx,
        kg: i64,
        s: Settlement,
        retire: bool,
    ) -> Vec<SerialRange> {
        self.users[buyer].money -= s.buyer_pays;
        self.users[seller].money += s.seller_receives;
        self.platform_fees += s.fees();
        let to = if retire {
            Acct::Retired(buyer)
        } else {
            Acct::Available(buyer)
        };
        self.move_lowest(Acct::Listing(l), to, kg, None)
    }

    /// A checkout the wallet does not cover: the quantity is reserved on the listing, the
    /// buyer's own money held, the order waits for the gateway's payment.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_pending_checkout(
        &mut self,
        number: String,
        buyer: User,
        l: ListingIx,
        kg: i64,
        plan: SalePlan,
        retire: bool,
        payment: Uuid,
    ) -> usize {
        let own = self.users[buyer].money.max(Decimal::ZERO);
        self.users[buyer].money -= own;
        self.users[buyer].held += own;
        self.listings[l].pending += kg;
        let seller = self.listings[l].seller;
        self.orders.push(OrderM {
            number,
            listing: l,
            buyer,
            seller,
            kg,
            price: plan.price,
            settlement: plan.settlement,
            status: "pending",
            serials: Vec::new(),
            retired: retire,
            dispute: None,
            payment: Some(payment),
            payment_status: "pending",
            gateway: plan.gateway.expect("a checkout the wallet does not cover"),
            pending: Some(Checkout {
                own,
                gateway: plan.gateway.expect("a checkout the wallet does not cover"),
            }),
        });
        self.orders.len() - 1
    }

    /// The checkout's payment came in: the order completes with the quantity it reserved
    /// (also on a listing closed meanwhile).
    pub fn apply_checkout_paid(&mut self, o: usize) {
        let order = self.orders[o].clone();
        let c = order.pending.expect("a pending checkout");
        let buyer = &mut self.users[order.buyer];
        buyer.held -= c.own;
        buyer.money += c.own;
        self.apply_top_up(order.buyer, c.gateway, true);
        let listing = &mut self.listings[order.listing];
        listing.pending -= order.kg;
        listing.sold += order.kg;
        if listing.status == "active" && listing.sold == listing.quantity && listing.pending == 0 {
            listing.status = "sold";
        }
        let serials = self.pay(
            order.buyer,
            order.seller,
            order.listing,
            order.kg,
            order.settlement,
            order.retired,
        );
        let order = &mut self.orders[o];
        order.serials = serials;
        order.status = "completed";
        order.pending = None;
        order.payment_status = "succeeded";
    }

    /// The checkout's payment failed or expired: the order is cancelled, the buyer's money
    /// released, the quantity back on sale — or back to the seller if the listing has closed.
    pub fn apply_checkout_failed(&mut self, o: usize, expired: bool) {
        let order = self.orders[o].clone();
        let c = order.pending.expect("a pending checkout");
        let buyer = &mut self.users[order.buyer];
        buyer.held -= c.own;
        buyer.money += c.own;
        let listing = &mut self.listings[order.listing];
        listing.pending -= order.kg;
        if listing.status != "active" {
            listing.quantity -= order.kg;
            let seller = listing.seller;
            self.move_lowest(
                Acct::Listing(order.listing),
                Acct::Available(seller),
                order.kg,
                None,
            );
        }
        let order = &mut self.orders[o];
        order.status = "cancelled";
        order.pending = None;
        order.payment_status = if expired { "expired" } else { "failed" };
    }

    /// The payment of an expired checkout arrives after all: the order stays cancelled and the
    /// money stays in the buyer's wallet.
    pub fn apply_late_payment(&mut self, o: usize) {
        let (buyer, gateway) = (self.orders[o].buyer, self.orders[o].gateway);
        self.apply_top_up(buyer, gateway, true);
        self.orders[o].payment_status = "succeeded";
    }

    /// `listings::change_price` and friends find only the seller's own listing, open.
    fn check_own_open(&self, seller: User, l: ListingIx, statuses: &[&str]) -> Result<(), Refusal> {
        let listing = &self.listings[l];
        if listing.seller != seller {
            return Err(Refusal::NotFound);
        }
        let open_auction = listing.kind == Kind::Auction && listing.status == "active";
        if open_auction || !statuses.contains(&listing.status) {
            return Err(Refusal::Conflict);
        }
        Ok(())
    }

    pub fn check_change_price(&self, seller: User, l: ListingIx) -> Result<(), Refusal> {
        self.check_own_open(seller, l, &["active"])
    }

    pub fn apply_change_price(&mut self, l: ListingIx, price: Decimal) {
        self.listings[l].price = price;
    }

    pub fn check_change_quantity(
        &self,
        seller: User,
        l: ListingIx,
        kg: i64,
    ) -> Result<(), Refusal> {
        self.check_own_open(seller, l, &["active"])?;
        let listing = &self.listings[l];
        if kg > listing.quantity || kg < listing.sold + listing.pending {
            return Err(Refusal::Invalid);
        }
        Ok(())
    }

    pub fn apply_change_quantity(&mut self, l: ListingIx, kg: i64) {
        let (quantity, seller) = (self.listings[l].quantity, self.listings[l].seller);
        if kg == quantity {
            return;
        }
        self.move_lowest(
            Acct::Listing(l),
            Acct::Available(seller),
            quantity - kg,
            None,
        );
        let listing = &mut self.listings[l];
        listing.quantity = kg;
        listing.min_lot = listing.min_lot.min(kg.max(1));
        if kg == listing.sold && listing.pending == 0 {
            listing.status = "sold";
        }
    }

    pub fn check_cancel(&self, seller: User, l: ListingIx) -> Result<(), Refusal> {
        self.check_own_open(seller, l, &["active", "suspended"])
    }

    /// Cancel or expiry: what is unsold goes back to the seller.
    pub fn apply_close(&mut self, l: ListingIx, status: &'static str) {
        let (unsold, seller) = (self.listings[l].left(), self.listings[l].seller);
        if unsold > 0 {
            self.move_lowest(Acct::Listing(l), Acct::Available(seller), unsold, None);
        }
        let listing = &mut self.listings[l];
        listing.status = status;
        listing.quantity = listing.sold + listing.pending;
    }

    /// How many listings the expiry job ends when only `l` is past its end.
    pub fn expiring(&self, l: ListingIx) -> usize {
        let listing = &self.listings[l];
        usize::from(listing.kind == Kind::Fixed && listing.status == "active")
    }

    // ---- auctions ------------------------------------------------------------------------

    /// The committed maximum of an auction's leader: the whole lot at it, with the buyer fee.
    fn commitment(&self, l: ListingIx, max: Decimal) -> Decimal {
        let a = self.listings[l].auction.as_ref().expect("an auction");
        Settlement::new(max, self.listings[l].quantity, a.fees).buyer_pays
    }

    /// `auctions::place`: the domain's rules, then whether the bidder can cover what the bid
    /// commits.
    pub fn check_bid(
        &self,
        bidder: User,
        l: ListingIx,
        max: Decimal,
        buy_now: bool,
        now: DateTime<Utc>,
    ) -> Result<BidPlan, Refusal> {
        // A fixed-price listing is no auction at all.
        let a = self.listings[l].auction.as_ref().ok_or(Refusal::NotFound)?;
        let who = self.users[bidder].id;
        let placed = if buy_now {
            auction::buy_now(&a.terms, &a.state, who, max, now)
        } else {
            auction::place(&a.terms, &a.state, who, max, now)
        }
        .map_err(|p| match p {
            BidProblem::NotAnAmount
            | BidProblem::TooLow { .. }
            | BidProblem::NotAboveOwnMaximum { .. } => Refusal::Invalid,
            BidProblem::Closed | BidProblem::OwnLot | BidProblem::NoBuyNow => Refusal::Conflict,
            BidProblem::BuyNowPriceRose(_) => Refusal::PriceChanged,
        })?;
        let offered = placed
            .state
            .leader
            .filter(|l| l.0 == who)
            .map_or(if buy_now { placed.state.price } else { max }, |l| l.1);
        let mut available = self.users[bidder].money;
        if a.leader == Some(bidder) {
            available += self.commitment(l, a.state.leader.expect("a leader").1);
        }
        if available < self.commitment(l, offered) {
            return Err(Refusal::Funds);
        }
        Ok(BidPlan { placed, buy_now })
    }

    /// A bid the platform accepted: the leader it ends with holds their commitment instead of
    /// the one before. Buy-now then closes the auction in the same transaction (its order's
    /// number is `order`).
    pub fn apply_bid(&mut self, l: ListingIx, plan: BidPlan, order: Option<String>) {
        let a = self.listings[l].auction.clone().expect("an auction");
        let after = plan.placed.state;
        if after.leader != a.state.leader {
            if let (Some(old), Some((_, max))) = (a.leader, a.state.leader) {
                let held = self.commitment(l, max);
                self.users[old].held -= held;
                self.users[old].money += held;
            }
            let (who, max) = after.leader.expect("a bid that leads leaves a leader");
            let new = self.user_of(who);
            let held = self.commitment(l, max);
            self.users[new].money -= held;
            self.users[new].held += held;
            self.listings[l]
                .auction
                .as_mut()
                .expect("an auction")
                .leader = Some(new);
        }
        let auction = self.listings[l].auction.as_mut().expect("an auction");
        auction.state = after;
        self.listings[l].price = after.price;
        if plan.buy_now {
            self.apply_auction_close(l, order);
        }
    }

    /// How many auctions the closing job closes when only `l`'s time is up.
    pub fn closing(&self, l: ListingIx) -> usize {
        usize::from(self.listings[l].auction.as_ref().is_some_and(|a| !a.closed))
    }

    /// The close (`domain::auction::outcome`): the leader's hold is released; sold, the winner
    /// pays for the lot from it; otherwise the lot goes back to the seller.
    pub fn apply_auction_close(&mut self, l: ListingIx, order: Option<String>) {
        let a = self.listings[l].auction.clone().expect("an auction");
        if let (Some(leader), Some((_, max))) = (a.leader, a.state.leader) {
            let held = self.commitment(l, max);
            self.users[leader].held -= held;
            self.users[leader].money += held;
        }
        let seller = self.listings[l].seller;
        let kg = self.listings[l].quantity;
        let outcome = auction::outcome(&a.terms, &a.state);
        let label = match outcome {
            Outcome::Sold { buyer, price } => {
                let buyer = self.user_of(buyer);
                let s = Settlement::new(price, kg, a.fees);
                let listing = &mut self.listings[l];
                listing.sold = kg;
                listing.price = price;
                listing.status = "sold";
                self.settle(
                    order.clone().expect("a sold lot has its order"),
                    buyer,
                    seller,
                    l,
                    kg,
                    price,
                    s,
                    false,
                );
                "sold"
            }
            Outcome::NoBids | Outcome::BelowReserve => {
                self.move_lowest(Acct::Listing(l), Acct::Available(seller), kg, None);
                let listing = &mut self.listings[l];
                listing.quantity = 0;
                listing.status = "expired";
                if outcome == Outcome::NoBids {
                    "no_bids"
                } else {
                    "below_reserve"
                }
            }
        };
        let auction = self.listings[l].auction.as_mut().expect("an auction");
        auction.closed = true;
        auction.state.bought_now = true;
        auction.leader = None;
        auction.outcome = Some(label);
        auction.order = order.filter(|_| label == "sold");
    }

    pub fn new_auction(terms: Terms, fees: Fees, ends_at: DateTime<Utc>) -> AuctionM {
        AuctionM {
            state: State::opening(&terms, ends_at),
            terms,
            fees,
            leader: None,
            closed: false,
            outcome: None,
            order: None,
        }
    }

    pub fn increment(fixed: Option<Decimal>) -> Increment {
        fixed.map_or(Increment::Table, Increment::Fixed)
    }

    // ---- retirement ----------------------------------------------------------------------

    pub fn check_retire(&self, u: User, kg: i64) -> Result<(), Refusal> {
        if kg < 1 || self.kg(Acct::Available(u), None) < kg {
            return Err(Refusal::Invalid);
        }
        Ok(())
    }

    pub fn apply_retire(&mut self, u: User, kg: i64) {
        self.move_lowest(Acct::Available(u), Acct::Retired(u), kg, None);
    }

    // ---- withdrawals ---------------------------------------------------------------------

    /// `withdrawals::request`'s checks, in its order.
    pub fn check_withdraw(&self, u: User, amount: Decimal) -> Result<(), Refusal> {
        let user = &self.users[u];
        let w = self.withdrawal;
        if !user.kyc {
            return Err(Refusal::Conflict);
        }
        if amount < w.min || amount > w.max || user.withdrawn + amount > w.daily_max {
            return Err(Refusal::Invalid);
        }
        if user.money < amount + w.fee {
            return Err(Refusal::Funds);
        }
        Ok(())
    }

    pub fn apply_withdraw(&mut self, number: String, u: User, amount: Decimal) {
        let fee = self.withdrawal.fee;
        let user = &mut self.users[u];
        user.money -= amount + fee;
        user.held += amount + fee;
        user.withdrawn += amount;
        self.withdrawals.push(WithdrawalM {
            number,
            user: u,
            amount,
            fee,
            status: "pending",
        });
    }

    pub fn check_decide_withdrawal(&self, w: usize) -> Result<(), Refusal> {
        if self.withdrawals[w].status != "pending" {
            return Err(Refusal::Conflict);
        }
        Ok(())
    }

    pub fn apply_decide_withdrawal(&mut self, w: usize, approve: bool) {
        let WithdrawalM {
            user, amount, fee, ..
        } = self.withdrawals[w].clone();
        let u = &mut self.users[user];
        u.held -= amount + fee;
        if approve {
            self.clearing += amount;
            self.platform_fees += fee;
            self.withdrawals[w].status = "paid";
        } else {
            u.money += amount + fee;
            u.withdrawn -= amount;
            self.withdrawals[w].status = "rejected";
        }
    }

    // ---- disputes ------------------------------------------------------------------------

    pub fn check_open_dispute(&self, buyer: User, o: usize) -> Result<(), Refusal> {
        let order = &self.orders[o];
        if order.buyer != buyer {
            return Err(Refusal::NotFound);
        }
        if order.dispute.is_some() || order.status != "completed" {
            return Err(Refusal::Conflict);
        }
        Ok(())
    }

    pub fn apply_open_dispute(&mut self, number: String, o: usize) {
        self.disputes.push(DisputeM {
            number,
            order: o,
            status: "open",
            returned_kg: None,
        });
        self.orders[o].dispute = Some(self.disputes.len() - 1);
    }

    /// A refund takes what the seller received back from their wallet: refused when it does
    /// not cover that.
    pub fn check_decide_dispute(&self, d: usize, refund: bool) -> Result<(), Refusal> {
        let dispute = &self.disputes[d];
        if dispute.status != "open" {
            return Err(Refusal::Conflict);
        }
        let order = &self.orders[dispute.order];
        if refund && self.users[order.seller].money < order.settlement.seller_receives {
            return Err(Refusal::Conflict);
        }
        Ok(())
    }

    /// Refunded: the buyer gets back all they paid, the seller and the fee income give it;
    /// the order's serials the buyer still holds available go back to the seller.
    pub fn apply_decide_dispute(&mut self, d: usize, refund: bool) {
        let o = self.disputes[d].order;
        if !refund {
            self.disputes[d].status = "rejected";
            return;
        }
        let order = self.orders[o].clone();
        let s = order.settlement;
        self.users[order.buyer].money += s.buyer_pays;
        self.users[order.seller].money -= s.seller_receives;
        self.platform_fees -= s.fees();
        let back = self.still_held(Acct::Available(order.buyer), &order.serials);
        self.remove(Acct::Available(order.buyer), &back);
        self.put(Acct::Available(order.seller), &back);
        self.orders[o].status = "refunded";
        self.disputes[d].status = "refunded";
        self.disputes[d].returned_kg = Some(back.iter().map(SerialRange::len).sum());
    }

    // ---- what the workers pick from ------------------------------------------------------

    pub fn users_of(&self, role: Role) -> Vec<User> {
        (0..self.users.len())
            .filter(|u| self.users[*u].role == role)
            .collect()
    }

    /// The classes an owner holds available.
    pub fn classes_of(&self, u: User) -> Vec<Class> {
        let set: BTreeSet<Class> = self
            .serials
            .get(&Acct::Available(u))
            .map(|by| {
                by.iter()
                    .filter(|(_, rs)| !rs.is_empty())
                    .map(|(i, _)| self.issuances[i].1.clone())
                    .collect()
            })
            .unwrap_or_default();
        set.into_iter().collect()
    }
}
