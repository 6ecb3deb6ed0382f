//! The soak (issue 22 B2): random concurrent operations over every money and credit flow —
//! issuance, top-ups, listings (buy, racing buyers, checkouts paid, failed, or expired by the
//! payment job and paid late, retire on purchase, price and quantity changes, cancel, expiry),
//! auctions (bids, buy-now, the close), retirements, withdrawals and their decisions, disputes
//! and refunds — driven through the real services
//! against PostgreSQL by several workers at once, each checked against a pure reference model
//! (`soak::model`) and, at the end, every balance, serial block, listing, auction, order,
//! withdrawal and dispute compared with it, and the ledger reconciled.
//!
//! The model must know the real order of operations that touch the same state. A worker locks
//! (in the harness, in user order) every user an operation touches — the buyer and the seller
//! of a purchase, the bidder, the seller and the current leader of a bid — so two operations
//! that share a wallet, a listing or an auction run one after the other, in an order the model
//! sees; operations on different users run at the same time in the platform (their purchases
//! settle in shared batches, their bids and sales share the fee accounts and sequences). The
//! closing and expiry jobs run one at a time, on the one auction or listing whose time is made
//! up (`ends_at`/`expires_at` moved to the past, as the auction tests do). One operation is
//! deliberately unordered: racing buyers on one listing (`Op::Race`) are checked against
//! the order the platform settled them in (their order numbers) and every refusal against
//! some point of it.
//!
//! `EVCX_SOAK_OPS` operations (1,000 by default; `make bench-soak` runs 100,000 against a
//! PostgreSQL with fsync on), `EVCX_SOAK_WORKERS` workers (8), `EVCX_SOAK_SEED` (printed; the
//! interleaving still varies from run to run). Prints `BENCH soak operations=… ok=… refused=…
//! mismatches=0 …` and fails on any mismatch.

mod model;

use crate::api::support::{reconciled, TestApp};
use app::domain::auction::Terms;
use app::domain::market::tonnes_plain;
use app::domain::serial::{self, SerialRange};
use app::domain::user::Role as AppRole;
use app::error::AppError;
use app::server::services::auctions::{self, NewAuction};
use app::server::services::disputes::{self, Decision as DisputeDecision};
use app::server::services::issuance::{self, Decision};
use app::server::services::listings::{self, NewListing};
use app::server::services::orders::{self, BuyInput};
use app::server::services::wallet::{self, RetireRequest};
use app::server::services::withdrawals::{self, NewWithdrawal};
use app::server::services::{methodology, payments, settings};
use app::server::AppState;
use model::{Acct, AuctionM, Class, ListingIx, Model, Refusal, Role, User, WithdrawalRules};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use uuid::Uuid;

const OWNERS: usize = 6;
const BUYERS: usize = 10;
const CLASSES: [(&str, i32); 3] = [("VN", 2025), ("VN", 2026), ("VN-S", 2026)];

/// One random operation, with the users, listings, orders… it names (model indices).
/// What becomes of a checkout's gateway payment: paid, failed, or left waiting (and, for
/// `Op::Settle`, expired by the payment job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pay {
    Succeed,
    Fail,
    Later,
}

#[derive(Debug, Clone)]
enum Op {
    TopUp {
        u: User,
        amount: i64,
        pay: bool,
    },
    Issue {
        owner: User,
        class: Class,
        gross: i64,
    },
    List {
        seller: User,
        class: Class,
        kg: i64,
        price: i64,
        min_lot: i64,
    },
    Buy {
        buyer: User,
        l: ListingIx,
        kg: i64,
        expected: Decimal,
        retire: bool,
        checkout: Option<Pay>,
    },
    /// A waiting checkout's payment succeeds, fails, or expires (the payment job).
    Settle {
        o: usize,
        how: Pay,
    },
    /// Several buyers at once on one listing, unordered: the model takes the platform's order
    /// (its order numbers) and checks every refusal against some point of it.
    Race {
        l: ListingIx,
        bids: Vec<(User, i64)>,
    },
    ChangePrice {
        seller: User,
        l: ListingIx,
        price: i64,
    },
    ChangeQuantity {
        seller: User,
        l: ListingIx,
        kg: i64,
    },
    Cancel {
        seller: User,
        l: ListingIx,
    },
    Expire {
        l: ListingIx,
    },
    Auction {
        seller: User,
        class: Class,
        kg: i64,
        start: i64,
        reserve: Option<i64>,
        buy_now: Option<i64>,
        increment: Option<i64>,
    },
    Bid {
        bidder: User,
        l: ListingIx,
        max: Decimal,
        buy_now: bool,
    },
    Close {
        l: ListingIx,
    },
    Retire {
        u: User,
        kg: i64,
    },
    Withdraw {
        u: User,
        amount: i64,
    },
    DecideWithdrawal {
        w: usize,
        approve: bool,
    },
    OpenDispute {
        buyer: User,
        o: usize,
    },
    DecideDispute {
        d: usize,
        refund: bool,
    },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::TopUp { .. } => "top_up",
            Op::Issue { .. } => "issue",
            Op::List { .. } => "list",
            Op::Buy { checkout: None, .. } => "buy",
            Op::Buy { .. } => "checkout",
            Op::Settle {
                how: Pay::Later, ..
            } => "expire_payment",
            Op::Settle { .. } => "pay_later",
            Op::Race { .. } => "race",
            Op::ChangePrice { .. } => "change_price",
            Op::ChangeQuantity { .. } => "change_quantity",
            Op::Cancel { .. } => "cancel",
            Op::Expire { .. } => "expire",
            Op::Auction { .. } => "auction",
            Op::Bid { buy_now: false, .. } => "bid",
            Op::Bid { .. } => "buy_now",
            Op::Close { .. } => "close",
            Op::Retire { .. } => "retire",
            Op::Withdraw { .. } => "withdraw",
            Op::DecideWithdrawal { .. } => "decide_withdrawal",
            Op::OpenDispute { .. } => "open_dispute",
            Op::DecideDispute { .. } => "decide_dispute",
        }
    }

    /// The users whose state (wallets, listings, auctions, orders) the operation reads or
    /// changes, as the model stands; and whether it is a job's run.
    fn involves(&self, m: &Model) -> (BTreeSet<User>, bool) {
        let seller = |l: &ListingIx| m.listings[*l].seller;
        let leader = |l: &ListingIx| m.listings[*l].auction.as_ref().and_then(|a| a.leader);
        let mut job = false;
        let users: Vec<User> = match self {
            Op::TopUp { u, .. } | Op::Retire { u, .. } | Op::Withdraw { u, .. } => vec![*u],
            Op::Issue { owner, .. } => vec![*owner],
            Op::List { seller, .. } | Op::Auction { seller, .. } => vec![*seller],
            Op::ChangePrice { seller, .. }
            | Op::ChangeQuantity { seller, .. }
            | Op::Cancel { seller, .. } => {
                vec![*seller]
            }
            Op::Buy { buyer, l, .. } => vec![*buyer, seller(l)],
            Op::Settle { o, how } => {
                job = *how == Pay::Later;
                vec![m.orders[*o].buyer, m.orders[*o].seller]
            }
            Op::Race { l, bids } => bids.iter().map(|b| b.0).chain([seller(l)]).collect(),
            Op::Expire { l } => {
                job = true;
                vec![seller(l)]
            }
            Op::Bid { bidder, l, .. } => [Some(*bidder), Some(seller(l)), leader(l)]
                .into_iter()
                .flatten()
                .collect(),
            Op::Close { l } => {
                job = true;
                [Some(seller(l)), leader(l)].into_iter().flatten().collect()
            }
            Op::DecideWithdrawal { w, .. } => vec![m.withdrawals[*w].user],
            Op::OpenDispute { o, .. } => vec![m.orders[*o].buyer, m.orders[*o].seller],
            Op::DecideDispute { d, .. } => {
                let o = &m.orders[m.disputes[*d].order];
                vec![o.buyer, o.seller]
            }
        };
        (users.into_iter().collect(), job)
    }
}

/// How one operation went.
#[derive(Debug)]
enum Verdict {
    Ok,
    /// Refused, as the model says it must be (how).
    Refused(&'static str),
    /// Refused as busy (a deadlock retried out, a wallet that changed at that instant): nothing
    /// written, which the final comparison checks.
    Busy,
    Mismatch(String),
}

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    refused: AtomicUsize,
    busy: AtomicUsize,
    mismatches: AtomicUsize,
    notes: Mutex<Vec<String>>,
    per_op: Mutex<BTreeMap<&'static str, [usize; 3]>>,
    /// Refusals per operation and kind.
    refusals: Mutex<BTreeMap<(&'static str, &'static str), usize>>,
}

impl Tally {
    fn count(&self, op: &'static str, v: Verdict) {
        let slot = match v {
            Verdict::Ok => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                0
            }
            Verdict::Refused(how) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                *self.refusals.lock().unwrap().entry((op, how)).or_default() += 1;
                1
            }
            Verdict::Busy => {
                self.busy.fetch_add(1, Ordering::Relaxed);
                1
            }
            Verdict::Mismatch(why) => {
                self.mismatch(format!("{op}: {why}"));
                2
            }
        };
        self.per_op.lock().unwrap().entry(op).or_default()[slot] += 1;
    }

    fn mismatch(&self, why: String) {
        self.mismatches.fetch_add(1, Ordering::Relaxed);
        let mut notes = self.notes.lock().unwrap();
        if notes.len() < 40 {
            eprintln!("MISMATCH {why}");
            notes.push(why);
        }
    }
}

/// The kind of refusal an `AppError` is.
fn refusal_of(e: &AppError) -> Option<Refusal> {
    Some(match e {
        AppError::NotFound { .. } => Refusal::NotFound,
        AppError::Invalid { .. } => Refusal::Invalid,
        AppError::Conflict { .. } => Refusal::Conflict,
        AppError::InsufficientFunds { .. } => Refusal::Funds,
        AppError::PriceChanged { .. } => Refusal::PriceChanged,
        _ => return None,
    })
}

fn is_busy(e: &AppError) -> bool {
    matches!(e, AppError::Conflict { message }
        if message.contains("busy") || message.contains("at this very moment") || message.contains("a moment ago"))
}

/// The model's expectation against the platform's answer: what to apply, or the verdict.
fn judge<P, T: std::fmt::Debug>(
    expected: Result<P, Refusal>,
    real: Result<T, AppError>,
) -> Result<(P, T), Verdict> {
    match (expected, real) {
        (Ok(p), Ok(t)) => Ok((p, t)),
        (Err(want), Err(e)) if refusal_of(&e) == Some(want) => Err(Verdict::Refused(want.name())),
        (Err(want), Err(e)) => Err(Verdict::Mismatch(format!(
            "the model refuses ({want:?}), the platform refused otherwise: {e:?}"
        ))),
        (Ok(_), Err(e)) if is_busy(&e) => Err(Verdict::Busy),
        (Ok(_), Err(e)) => Err(Verdict::Mismatch(format!(
            "the model accepts, the platform refused: {e:?}"
        ))),
        (Err(want), Ok(t)) => Err(Verdict::Mismatch(format!(
            "the model refuses ({want:?}), the platform accepted: {t:?}"
        ))),
    }
}

struct Soak {
    app: TestApp,
    model: Mutex<Model>,
    /// One lock per user (taken in user order), and one for the jobs.
    users: Vec<Arc<tokio::sync::Mutex<()>>>,
    jobs: tokio::sync::Mutex<()>,
    tally: Tally,
    admin: Uuid,
    cva: Uuid,
    keys: AtomicUsize,
}

impl Soak {
    fn state(&self) -> &AppState {
        &self.app.state
    }

    fn pool(&self) -> &PgPool {
        &self.app.pool
    }

    fn key(&self, what: &str) -> String {
        format!("soak-{what}-{}", self.keys.fetch_add(1, Ordering::Relaxed))
    }

    fn currency(&self) -> &str {
        &self.state().config.payments.currency
    }

    /// Runs one operation with every user it involves locked; answers how it went.
    async fn run(&self, op: Op) -> Verdict {
        loop {
            let (users, job) = op.involves(&self.model.lock().unwrap());
            let _job = if job {
                Some(self.jobs.lock().await)
            } else {
                None
            };
            let mut guards = Vec::with_capacity(users.len());
            for u in &users {
                guards.push(self.users[*u].clone().lock_owned().await);
            }
            // The leader may have changed while we waited: lock again if so.
            if !op.involves(&self.model.lock().unwrap()).0.is_subset(&users) {
                continue;
            }
            return self.execute(&op).await;
        }
    }

    async fn execute(&self, op: &Op) -> Verdict {
        match op.clone() {
            Op::TopUp { u, amount, pay } => self.top_up(u, amount, pay).await,
            Op::Issue {
                owner,
                class,
                gross,
            } => self.issue(owner, class, gross).await,
            Op::List {
                seller,
                class,
                kg,
                price,
                min_lot,
            } => self.list(seller, class, kg, price, min_lot).await,
            Op::Buy {
                buyer,
                l,
                kg,
                expected,
                retire,
                checkout,
            } => self.buy(buyer, l, kg, expected, retire, checkout).await,
            Op::Settle { o, how } => self.settle_checkout(o, how).await,
            Op::Race { l, bids } => self.race(l, bids).await,
            Op::ChangePrice { seller, l, price } => self.change_price(seller, l, price).await,
            Op::ChangeQuantity { seller, l, kg } => self.change_quantity(seller, l, kg).await,
            Op::Cancel { seller, l } => self.cancel(seller, l).await,
            Op::Expire { l } => self.expire(l).await,
            Op::Auction {
                seller,
                class,
                kg,
                start,
                reserve,
                buy_now,
                increment,
            } => {
                self.auction(seller, class, kg, start, reserve, buy_now, increment)
                    .await
            }
            Op::Bid {
                bidder,
                l,
                max,
                buy_now,
            } => self.bid(bidder, l, max, buy_now).await,
            Op::Close { l } => self.close(l).await,
            Op::Retire { u, kg } => self.retire(u, kg).await,
            Op::Withdraw { u, amount } => self.withdraw(u, amount).await,
            Op::DecideWithdrawal { w, approve } => self.decide_withdrawal(w, approve).await,
            Op::OpenDispute { buyer, o } => self.open_dispute(buyer, o).await,
            Op::DecideDispute { d, refund } => self.decide_dispute(d, refund).await,
        }
    }

    fn id(&self, u: User) -> Uuid {
        self.model.lock().unwrap().users[u].id
    }

    fn number(&self, l: ListingIx) -> String {
        self.model.lock().unwrap().listings[l].number.clone()
    }

    /// A top-up through the sandbox gateway: its page, the payer's choice, the signed webhook.
    async fn top_up(&self, u: User, amount: i64, pay: bool) -> Verdict {
        let expected = self
            .model
            .lock()
            .unwrap()
            .check_top_up(Decimal::from(amount));
        let id = self.id(u);
        let real = async {
            let created = payments::top_up(self.state(), id, &amount.to_string()).await?;
            let page = payments::sandbox_payment(self.pool(), id, created.id)
                .await?
                .ok_or_else(|| AppError::not_found("The payment"))?;
            payments::sandbox_choice(self.state(), &page, if pay { "succeed" } else { "fail" })
                .await
        }
        .await;
        match judge(expected, real) {
            Ok(((), reply)) => {
                let applied = matches!(&reply, Some(payments::WebhookReply::Applied(_)));
                if !applied {
                    return Verdict::Mismatch(format!("the webhook was not applied: {reply:?}"));
                }
                self.model
                    .lock()
                    .unwrap()
                    .apply_top_up(u, Decimal::from(amount), pay);
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    /// A CVA approves a request of `gross` kg (a bare request, as the tests' `grant_credits`).
    async fn issue(&self, owner: User, class: Class, gross: i64) -> Verdict {
        let (net, buffer) = self.model.lock().unwrap().issuance_split(gross);
        let id = Uuid::new_v4();
        let inserted = sqlx::query(
            "INSERT INTO credit_requests (id, number, owner_id, period_from, period_to, region, vintage,
                 methodology_version_id, trips, distance_km, energy_kwh, baseline_kg, project_kg, avoided_kg,
                 gross_kg, buffer_kg, net_kg, risk_score, calculation, status)
             VALUES ($1, 'SOAK-' || $1::text, $2, make_date($4, 1, 1), make_date($4, 12, 31), $3, $4,
                 (SELECT version_id FROM methodology_active), 1, 100, 15, $5, 0, $5, $5, $6, $7, 0, '{}', 'pending')",
        )
        .bind(id)
        .bind(self.id(owner))
        .bind(&class.region)
        .bind(class.vintage)
        .bind(gross)
        .bind(buffer)
        .bind(net)
        .execute(self.pool())
        .await;
        if let Err(e) = inserted {
            return Verdict::Mismatch(format!("the request: {e}"));
        }
        let real = issuance::decide(self.pool(), self.cva, id, Decision::Approve).await;
        match judge(Ok(()), real) {
            Ok(((), decided)) => {
                let Some(issued) = decided.issued else {
                    return Verdict::Mismatch("approved without an issuance".into());
                };
                if (issued.gross_kg, issued.net_kg, issued.buffer_kg) != (gross, net, buffer)
                    || issued.serials.len() != gross
                {
                    return Verdict::Mismatch(format!(
                        "issued {issued:?}, the methodology says {gross} = {net} + {buffer}"
                    ));
                }
                match self
                    .model
                    .lock()
                    .unwrap()
                    .apply_issuance(owner, class, issued.serials)
                {
                    Ok(()) => Verdict::Ok,
                    Err(why) => Verdict::Mismatch(why),
                }
            }
            Err(v) => v,
        }
    }

    async fn list(&self, seller: User, class: Class, kg: i64, price: i64, min_lot: i64) -> Verdict {
        let expected = self.model.lock().unwrap().check_list(seller, &class, kg);
        let form = class.form();
        let (quantity, min) = (tonnes_plain(kg), tonnes_plain(min_lot));
        let input = NewListing {
            class: &form,
            quantity: &quantity,
            price: &price.to_string(),
            min_lot: &min,
            description: "soak",
            expires_on: "",
            confirm_price: true,
        };
        let real = listings::create(self.pool(), self.currency(), self.id(seller), input).await;
        match judge(expected, real) {
            Ok(((), number)) => {
                self.model.lock().unwrap().apply_list(
                    number,
                    seller,
                    class,
                    kg,
                    Decimal::from(price),
                    min_lot,
                    None,
                );
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    /// A purchase paid from the wallet, or a checkout whose gateway payment then succeeds,
    /// fails or waits (`checkout`).
    async fn buy(
        &self,
        buyer: User,
        l: ListingIx,
        kg: i64,
        expected_price: Decimal,
        retire: bool,
        checkout: Option<Pay>,
    ) -> Verdict {
        let expected =
            self.model
                .lock()
                .unwrap()
                .check_buy(buyer, l, kg, expected_price, checkout.is_some());
        let (number, quantity, key) = (self.number(l), tonnes_plain(kg), self.key("buy"));
        let price = expected_price.to_string();
        let input = BuyInput {
            listing: &number,
            quantity: &quantity,
            expected_price: &price,
            idempotency_key: &key,
            checkout: checkout.is_some(),
            retire,
            beneficiary: if retire { "Soak Beneficiary" } else { "" },
            reason: if retire { "offsetting the soak" } else { "" },
        };
        let id = self.id(buyer);
        let real = orders::buy(self.state(), id, input).await;
        let (plan, purchase) = match judge(expected, real) {
            Ok(x) => x,
            Err(v) => return v,
        };
        let Some(paid) = checkout.filter(|_| plan.gateway.is_some()) else {
            if purchase.next != format!("/orders/{}", purchase.order) {
                return Verdict::Mismatch(format!(
                    "a purchase the wallet covers goes to {}",
                    purchase.next
                ));
            }
            self.model
                .lock()
                .unwrap()
                .apply_sale(purchase.order, buyer, l, kg, plan, retire);
            return Verdict::Ok;
        };
        // The gateway's page for what the wallet does not cover.
        let Some(payment) = purchase
            .next
            .strip_prefix("/sandbox/pay/")
            .and_then(|p| p.parse::<Uuid>().ok())
        else {
            return Verdict::Mismatch(format!("a checkout goes to {}", purchase.next));
        };
        let asked: Option<Decimal> =
            sqlx::query_scalar("SELECT amount FROM payments WHERE id = $1")
                .bind(payment)
                .fetch_optional(self.pool())
                .await
                .unwrap();
        if asked != plan.gateway {
            return Verdict::Mismatch(format!(
                "the checkout asks the gateway for {asked:?}, the model {:?}",
                plan.gateway
            ));
        }
        let o = self.model.lock().unwrap().apply_pending_checkout(
            purchase.order,
            buyer,
            l,
            kg,
            plan,
            retire,
            payment,
        );
        match paid {
            Pay::Later => Verdict::Ok,
            how => self.settle_checkout(o, how).await,
        }
    }

    /// A checkout's payment succeeds or fails on the gateway's page (a signed webhook), or,
    /// `Pay::Later`, its time is made to be up and the payment job expires it. A payment settled
    /// before changes nothing — but one that expired still succeeds late: its money stays in
    /// the wallet (its order stays cancelled).
    async fn settle_checkout(&self, o: usize, how: Pay) -> Verdict {
        let (payment, status, buyer) = {
            let m = self.model.lock().unwrap();
            let order = &m.orders[o];
            (order.payment, order.payment_status, m.users[order.buyer].id)
        };
        let Some(payment) = payment else {
            return Verdict::Mismatch("a checkout without its payment".into());
        };
        let waiting = status == "pending";
        if how == Pay::Later {
            // The payment's time is up (its row is otherwise immutable but for its outcome:
            // the trigger that says so is bypassed for this one statement).
            let mut tx = self.pool().begin().await.unwrap();
            sqlx::query("SET LOCAL session_replication_role = replica")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(
                "UPDATE payments SET expires_at = now() - interval '1 second'
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(payment)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
            return match payments::expire_due(self.pool()).await {
                Ok(1) if waiting => {
                    self.model.lock().unwrap().apply_checkout_failed(o, true);
                    Verdict::Ok
                }
                Ok(0) if !waiting => Verdict::Refused("settled_before"),
                other => Verdict::Mismatch(format!(
                    "the payment job expired {other:?}; the model's payment is {status}"
                )),
            };
        }
        let paying = async {
            let page = payments::sandbox_payment(self.pool(), buyer, payment)
                .await?
                .ok_or_else(|| AppError::not_found("The payment"))?;
            let choice = if how == Pay::Succeed {
                "succeed"
            } else {
                "fail"
            };
            payments::sandbox_choice(self.state(), &page, choice).await
        }
        .await;
        let late = how == Pay::Succeed && status == "expired";
        match paying {
            Ok(Some(payments::WebhookReply::Applied(_))) if waiting || late => {
                let mut m = self.model.lock().unwrap();
                match how {
                    Pay::Succeed if late => m.apply_late_payment(o),
                    Pay::Succeed => m.apply_checkout_paid(o),
                    _ => m.apply_checkout_failed(o, false),
                }
                Verdict::Ok
            }
            Ok(Some(payments::WebhookReply::AlreadySettled(_))) if !(waiting || late) => {
                Verdict::Refused("settled_before")
            }
            other => Verdict::Mismatch(format!(
                "the checkout's payment: {other:?}; the model's payment is {status}"
            )),
        }
    }

    /// Wallet-paid purchases of several buyers on one listing at the same moment (they settle
    /// in the purchase queue's batches, in an order only the platform knows). The accepted ones
    /// are applied in the order of their order numbers (drawn in settling order), each of which
    /// the model must accept at that point; each refusal must be what the model says at some
    /// point of that sequence (the buyers are distinct, so only the listing changes under them).
    async fn race(&self, l: ListingIx, bids: Vec<(User, i64)>) -> Verdict {
        let (number, price) = {
            let m = self.model.lock().unwrap();
            (m.listings[l].number.clone(), m.listings[l].price)
        };
        let expected = price.to_string();
        let tries = bids.iter().map(|(buyer, kg)| {
            let (id, quantity, key) = (self.id(*buyer), tonnes_plain(*kg), self.key("race"));
            let (number, expected) = (number.clone(), expected.clone());
            async move {
                let input = BuyInput {
                    listing: &number,
                    quantity: &quantity,
                    expected_price: &expected,
                    idempotency_key: &key,
                    ..BuyInput::default()
                };
                orders::buy(self.state(), id, input).await
            }
        });
        let answers = futures::future::join_all(tries).await;
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for ((buyer, kg), answer) in bids.into_iter().zip(answers) {
            match answer {
                Ok(p) => accepted.push((p.order, buyer, kg)),
                Err(e) if is_busy(&e) => {}
                Err(e) => match refusal_of(&e) {
                    Some(kind) => refused.push((buyer, kg, kind, BTreeSet::new())),
                    None => return Verdict::Mismatch(format!("a racing purchase failed: {e:?}")),
                },
            }
        }
        let serial_of = |order: &str| {
            order
                .trim_start_matches("ORD-")
                .parse::<u64>()
                .unwrap_or(u64::MAX)
        };
        accepted.sort_by_key(|(order, _, _)| serial_of(order));
        let mut m = self.model.lock().unwrap();
        let note = |m: &Model, refused: &mut Vec<(User, i64, Refusal, BTreeSet<Refusal>)>| {
            for (buyer, kg, _, possible) in refused.iter_mut() {
                if let Err(kind) = m.check_buy(*buyer, l, *kg, price, false) {
                    possible.insert(kind);
                }
            }
        };
        note(&m, &mut refused);
        for (order, buyer, kg) in &accepted {
            match m.check_buy(*buyer, l, *kg, price, false) {
                Ok(plan) => m.apply_sale(order.clone(), *buyer, l, *kg, plan, false),
                Err(kind) => {
                    return Verdict::Mismatch(format!(
                        "racing purchase {order} of {kg} kg accepted, the model refuses it then ({kind:?})"
                    ))
                }
            }
            note(&m, &mut refused);
        }
        if let Some((_, kg, kind, possible)) = refused.iter().find(|r| !r.3.contains(&r.2)) {
            return Verdict::Mismatch(format!(
                "a racing purchase of {kg} kg refused ({kind:?}); the model would refuse it only as {possible:?}"
            ));
        }
        if accepted.is_empty() {
            Verdict::Refused("none_won")
        } else {
            Verdict::Ok
        }
    }

    async fn change_price(&self, seller: User, l: ListingIx, price: i64) -> Verdict {
        let expected = self.model.lock().unwrap().check_change_price(seller, l);
        let real = listings::change_price(
            self.pool(),
            self.currency(),
            self.id(seller),
            &self.number(l),
            &price.to_string(),
            true,
        )
        .await;
        match judge(expected, real) {
            Ok(((), ())) => {
                self.model
                    .lock()
                    .unwrap()
                    .apply_change_price(l, Decimal::from(price));
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    async fn change_quantity(&self, seller: User, l: ListingIx, kg: i64) -> Verdict {
        let expected = self
            .model
            .lock()
            .unwrap()
            .check_change_quantity(seller, l, kg);
        let real = listings::change_quantity(
            self.pool(),
            self.id(seller),
            &self.number(l),
            &tonnes_plain(kg),
        )
        .await;
        match judge(expected, real) {
            Ok(((), ())) => {
                self.model.lock().unwrap().apply_change_quantity(l, kg);
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    async fn cancel(&self, seller: User, l: ListingIx) -> Verdict {
        let expected = self.model.lock().unwrap().check_cancel(seller, l);
        let real = listings::cancel(self.pool(), self.id(seller), &self.number(l)).await;
        match judge(expected, real) {
            Ok(((), ())) => {
                self.model.lock().unwrap().apply_close(l, "cancelled");
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    /// The listing's end is made to have passed; the expiry job runs.
    async fn expire(&self, l: ListingIx) -> Verdict {
        let expected = self.model.lock().unwrap().expiring(l);
        sqlx::query("UPDATE listings SET expires_at = now() - interval '1 second' WHERE number = $1 AND kind = 'fixed'")
            .bind(self.number(l))
            .execute(self.pool())
            .await
            .unwrap();
        match listings::expire_due(self.pool()).await {
            Ok(n) if n == expected => {
                if n == 1 {
                    self.model.lock().unwrap().apply_close(l, "expired");
                    Verdict::Ok
                } else {
                    Verdict::Refused("nothing_due")
                }
            }
            other => Verdict::Mismatch(format!(
                "the expiry job ended {other:?}, the model {expected}"
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn auction(
        &self,
        seller: User,
        class: Class,
        kg: i64,
        start: i64,
        reserve: Option<i64>,
        buy_now: Option<i64>,
        increment: Option<i64>,
    ) -> Verdict {
        let expected = self.model.lock().unwrap().check_list(seller, &class, kg);
        let form = class.form();
        let text = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let (reserve_s, buy_now_s, increment_s) = (text(reserve), text(buy_now), text(increment));
        let quantity = tonnes_plain(kg);
        let input = NewAuction {
            class: &form,
            quantity: &quantity,
            starting_price: &start.to_string(),
            reserve: &reserve_s,
            increment: &increment_s,
            buy_now: &buy_now_s,
            duration_minutes: "10080",
            description: "soak",
        };
        let id = self.id(seller);
        let ends_at = chrono::Utc::now() + chrono::Duration::days(7);
        let real = auctions::create(self.pool(), self.currency(), id, input).await;
        match judge(expected, real) {
            Ok(((), number)) => {
                let mut m = self.model.lock().unwrap();
                let terms = Terms {
                    seller: id,
                    starting_price: Decimal::from(start),
                    reserve: reserve.map(Decimal::from),
                    increment: Model::increment(increment.map(Decimal::from)),
                    buy_now: buy_now.map(Decimal::from),
                    soft_close_secs: 120,
                };
                let a: AuctionM = Model::new_auction(terms, m.fees, ends_at);
                m.apply_list(number, seller, class, kg, Decimal::from(start), kg, Some(a));
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    /// The order an auction's close made, if any.
    async fn auction_order(&self, l: ListingIx) -> Option<String> {
        sqlx::query_scalar(
            "SELECT o.number FROM auctions a JOIN listings l ON l.id = a.listing_id
             JOIN orders o ON o.id = a.order_id WHERE l.number = $1",
        )
        .bind(self.number(l))
        .fetch_optional(self.pool())
        .await
        .unwrap()
    }

    async fn bid(&self, bidder: User, l: ListingIx, max: Decimal, buy_now: bool) -> Verdict {
        let expected =
            self.model
                .lock()
                .unwrap()
                .check_bid(bidder, l, max, buy_now, chrono::Utc::now());
        let key = self.key("bid");
        let real = auctions::bid(
            self.state(),
            self.id(bidder),
            &self.number(l),
            &max.to_string(),
            buy_now,
            Some(&key),
        )
        .await;
        match judge(expected, real) {
            Ok((plan, placed)) => {
                if placed.leading != plan.placed.leading || placed.price != plan.placed.state.price
                {
                    return Verdict::Mismatch(format!(
                        "bid placed {placed:?}, the domain says leading {} at {}",
                        plan.placed.leading, plan.placed.state.price
                    ));
                }
                let order = if buy_now {
                    self.auction_order(l).await
                } else {
                    None
                };
                self.model.lock().unwrap().apply_bid(l, plan, order);
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    /// The auction's time is made to be up; the closing job runs.
    async fn close(&self, l: ListingIx) -> Verdict {
        let expected = self.model.lock().unwrap().closing(l);
        sqlx::query(
            "UPDATE auctions SET ends_at = now() - interval '1 second', version = version + 1
             WHERE listing_id = (SELECT id FROM listings WHERE number = $1) AND closed_at IS NULL",
        )
        .bind(self.number(l))
        .execute(self.pool())
        .await
        .unwrap();
        match auctions::close_due(self.state()).await {
            Ok(n) if n == expected => {
                if n == 1 {
                    let order = self.auction_order(l).await;
                    self.model.lock().unwrap().apply_auction_close(l, order);
                    Verdict::Ok
                } else {
                    Verdict::Refused("nothing_due")
                }
            }
            other => Verdict::Mismatch(format!(
                "the closing job closed {other:?}, the model {expected}"
            )),
        }
    }

    async fn retire(&self, u: User, kg: i64) -> Verdict {
        let expected = self.model.lock().unwrap().check_retire(u, kg);
        let (quantity, key) = (kg.to_string(), self.key("retire"));
        let request = RetireRequest {
            quantity_kg: &quantity,
            beneficiary: "Soak Company",
            reason: "annual emissions",
            idempotency_key: &key,
            show_holder: false,
        };
        let real = wallet::retire(self.pool(), self.id(u), request).await;
        match judge(expected, real) {
            Ok(((), _certificate)) => {
                self.model.lock().unwrap().apply_retire(u, kg);
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    async fn withdraw(&self, u: User, amount: i64) -> Verdict {
        let expected = self
            .model
            .lock()
            .unwrap()
            .check_withdraw(u, Decimal::from(amount));
        let (amount_s, key) = (amount.to_string(), self.key("withdraw"));
        let input = NewWithdrawal {
            amount: &amount_s,
            bank_name: "Vietcombank",
            account_holder: "Soak Holder",
            account_number: "0123456789",
            idempotency_key: &key,
        };
        let real = withdrawals::request(self.state(), self.id(u), input).await;
        match judge(expected, real) {
            Ok(((), number)) => {
                self.model
                    .lock()
                    .unwrap()
                    .apply_withdraw(number, u, Decimal::from(amount));
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    async fn decide_withdrawal(&self, w: usize, approve: bool) -> Verdict {
        let (expected, number) = {
            let m = self.model.lock().unwrap();
            (
                m.check_decide_withdrawal(w),
                m.withdrawals[w].number.clone(),
            )
        };
        let real = withdrawals::decide(
            self.pool(),
            self.admin,
            &number,
            if approve { "approve" } else { "reject" },
            if approve { "" } else { "soak: rejected" },
        )
        .await;
        match judge(expected, real) {
            Ok(((), ())) => {
                self.model
                    .lock()
                    .unwrap()
                    .apply_decide_withdrawal(w, approve);
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    async fn open_dispute(&self, buyer: User, o: usize) -> Verdict {
        let (expected, number) = {
            let m = self.model.lock().unwrap();
            (m.check_open_dispute(buyer, o), m.orders[o].number.clone())
        };
        let real = disputes::open(
            self.pool(),
            self.id(buyer),
            &number,
            "the soak disputes this order",
        )
        .await;
        match judge(expected, real) {
            Ok(((), dispute)) => {
                self.model.lock().unwrap().apply_open_dispute(dispute, o);
                Verdict::Ok
            }
            Err(v) => v,
        }
    }

    async fn decide_dispute(&self, d: usize, refund: bool) -> Verdict {
        let (expected, number) = {
            let m = self.model.lock().unwrap();
            (
                m.check_decide_dispute(d, refund),
                m.disputes[d].number.clone(),
            )
        };
        let real = disputes::decide(
            self.pool(),
            self.admin,
            self.currency(),
            &number,
            if refund {
                DisputeDecision::Refund
            } else {
                DisputeDecision::Reject
            },
            "soak decision",
        )
        .await;
        match judge(expected, real) {
            Ok(((), decided)) => {
                let mut m = self.model.lock().unwrap();
                m.apply_decide_dispute(d, refund);
                if decided.returned_kg != m.disputes[d].returned_kg {
                    return Verdict::Mismatch(format!(
                        "dispute {number} returned {:?} kg, the model {:?}",
                        decided.returned_kg, m.disputes[d].returned_kg
                    ));
                }
                Verdict::Ok
            }
            Err(v) => v,
        }
    }
}

/// Mostly (95 %) one of `wanted`; otherwise, or when there is none, what `otherwise` picks
/// (an operation the platform must refuse, on purpose).
fn mostly(
    rng: &mut StdRng,
    wanted: &[usize],
    otherwise: impl FnOnce(&mut StdRng) -> usize,
) -> usize {
    if wanted.is_empty() || rng.gen_bool(0.05) {
        otherwise(rng)
    } else {
        wanted[rng.gen_range(0..wanted.len())]
    }
}

/// A random operation over the model as it stands (stale by the time it runs, sometimes on
/// purpose: the model then says how the platform must refuse it).
fn pick(m: &Model, rng: &mut StdRng) -> Op {
    let owners = m.users_of(Role::Owner);
    let buyers = m.users_of(Role::Buyer);
    let one = |rng: &mut StdRng, v: &[usize]| v[rng.gen_range(0..v.len())];
    let fixed: Vec<ListingIx> = (0..m.listings.len())
        .filter(|l| m.listings[*l].auction.is_none() && m.listings[*l].status == "active")
        .collect();
    let open_auctions: Vec<ListingIx> = (0..m.listings.len())
        .filter(|l| m.listings[*l].auction.as_ref().is_some_and(|a| !a.closed))
        .collect();
    let any_listing = |rng: &mut StdRng| rng.gen_range(0..m.listings.len().max(1));
    let listing_of = |rng: &mut StdRng, open: &[ListingIx]| mostly(rng, open, any_listing);
    let roll = rng.gen_range(0..100);
    let have_listings = !m.listings.is_empty();
    match roll {
        0..=5 => {
            let u = one(rng, &buyers[1..]);
            Op::TopUp {
                u,
                amount: rng.gen_range(1..=25) * 100_000,
                pay: rng.gen_bool(0.9),
            }
        }
        6 => Op::Issue {
            owner: one(rng, &owners),
            class: class(rng.gen_range(0..CLASSES.len())),
            gross: rng.gen_range(10_000..=100_000),
        },
        7..=13 => {
            let seller = one(rng, &owners);
            let classes = m.classes_of(seller);
            let class = if classes.is_empty() || rng.gen_bool(0.03) {
                self::class(rng.gen_range(0..CLASSES.len()))
            } else {
                classes[rng.gen_range(0..classes.len())].clone()
            };
            let kg = rng.gen_range(1..=40) * 500;
            Op::List {
                seller,
                class,
                kg,
                price: rng.gen_range(50..=400) * 1000,
                min_lot: if rng.gen_bool(0.5) {
                    1
                } else {
                    rng.gen_range(1..=kg.min(2000))
                },
            }
        }
        14..=43 if have_listings => {
            let l = listing_of(rng, &fixed);
            let listing = &m.listings[l];
            let left = listing.left().max(1);
            let kg = match rng.gen_range(0..20) {
                0 => left + rng.gen_range(1..100),
                1 => rng.gen_range(1..=listing.min_lot.max(1)),
                2 => left,
                // Mostly from the minimum lot up to what is left (or 3 t).
                _ => {
                    let low = listing.min_lot.clamp(1, left);
                    rng.gen_range(low..=left.min(3000).max(low))
                }
            };
            let expected = match rng.gen_range(0..20) {
                0 => (listing.price - Decimal::from(1000)).max(Decimal::ONE),
                1 => listing.price + Decimal::from(10_000),
                _ => listing.price,
            };
            let checkout = (roll >= 40).then(|| match rng.gen_range(0..20) {
                0..=8 => Pay::Succeed,
                9..=12 => Pay::Fail,
                _ => Pay::Later,
            });
            // Checkouts are mostly the wallet-less buyer's: the gateway pays what the wallet
            // does not cover.
            let buyer = if checkout.is_some() && rng.gen_bool(0.8) {
                buyers[0]
            } else {
                one(rng, &buyers)
            };
            Op::Buy {
                buyer,
                l,
                kg,
                expected,
                retire: rng.gen_bool(0.1),
                checkout,
            }
        }
        44..=45 if have_listings && !fixed.is_empty() => {
            let l = one(rng, &fixed);
            let left = m.listings[l].left().max(1);
            let mut racers = buyers.clone();
            let n = rng.gen_range(2..=4);
            let bids = (0..n)
                .map(|_| {
                    let buyer = racers.remove(rng.gen_range(0..racers.len()));
                    (buyer, rng.gen_range(1..=left.min(3000)))
                })
                .collect();
            Op::Race { l, bids }
        }
        46..=47 if have_listings => {
            let l = listing_of(rng, &fixed);
            Op::ChangePrice {
                seller: if rng.gen_bool(0.95) {
                    m.listings[l].seller
                } else {
                    one(rng, &owners)
                },
                l,
                price: rng.gen_range(50..=400) * 1000,
            }
        }
        48..=50 if have_listings => {
            let l = listing_of(rng, &fixed);
            let listing = &m.listings[l];
            let committed = listing.sold + listing.pending;
            Op::ChangeQuantity {
                seller: listing.seller,
                l,
                kg: if rng.gen_bool(0.1) {
                    listing.quantity + 1
                } else {
                    rng.gen_range(committed.max(1)..=listing.quantity.max(committed.max(1)))
                },
            }
        }
        51..=52 if have_listings => {
            let l = listing_of(rng, &fixed);
            Op::Cancel {
                seller: m.listings[l].seller,
                l,
            }
        }
        53 if have_listings => Op::Expire {
            l: listing_of(rng, &fixed),
        },
        54..=57 => {
            let seller = one(rng, &owners);
            let classes = m.classes_of(seller);
            let class = if classes.is_empty() {
                self::class(0)
            } else {
                classes[rng.gen_range(0..classes.len())].clone()
            };
            let start = rng.gen_range(50..=300) * 1000;
            Op::Auction {
                seller,
                class,
                kg: rng.gen_range(1..=20) * 250,
                start,
                reserve: rng
                    .gen_bool(0.3)
                    .then(|| start + rng.gen_range(0..=100) * 1000),
                buy_now: rng
                    .gen_bool(0.3)
                    .then(|| start + rng.gen_range(101..=300) * 1000),
                increment: rng.gen_bool(0.3).then(|| rng.gen_range(1..=10) * 500),
            }
        }
        58..=74 if have_listings => {
            let buy_now = roll >= 73;
            let with_buy_now: Vec<ListingIx> = open_auctions
                .iter()
                .copied()
                .filter(|l| {
                    m.listings[*l]
                        .auction
                        .as_ref()
                        .is_some_and(|a| a.terms.buy_now.is_some())
                })
                .collect();
            let l = listing_of(
                rng,
                if buy_now {
                    &with_buy_now
                } else {
                    &open_auctions
                },
            );
            let listing = &m.listings[l];
            let bidder = if rng.gen_bool(0.02) {
                listing.seller
            } else {
                one(rng, &buyers)
            };
            let max = match &listing.auction {
                Some(a) if buy_now => a.terms.buy_now.unwrap_or(listing.price),
                Some(a) => {
                    let minimum = a.state.minimum_bid(&a.terms);
                    match rng.gen_range(0..10) {
                        0 => (minimum - Decimal::from(500)).max(Decimal::ONE),
                        1 => minimum,
                        _ => minimum + Decimal::from(rng.gen_range(0..=60) * 1000),
                    }
                }
                None => listing.price,
            };
            Op::Bid {
                bidder,
                l,
                max,
                buy_now,
            }
        }
        75..=77 if have_listings => Op::Close {
            l: listing_of(rng, &open_auctions),
        },
        78..=82 => {
            let u = if rng.gen_bool(0.8) {
                one(rng, &buyers)
            } else {
                one(rng, &owners)
            };
            let have = m.kg(Acct::Available(u), None);
            Op::Retire {
                u,
                kg: if rng.gen_bool(0.1) || have == 0 {
                    have + rng.gen_range(1..1000)
                } else {
                    rng.gen_range(1..=have.min(2000))
                },
            }
        }
        83..=87 => {
            let u = if rng.gen_bool(0.7) {
                one(rng, &owners)
            } else {
                one(rng, &buyers)
            };
            let amount = match rng.gen_range(0..20) {
                0 => 10_000,
                1 => 300_000_000,
                _ => rng.gen_range(1..=50) * 100_000,
            };
            Op::Withdraw { u, amount }
        }
        88..=90 if !m.withdrawals.is_empty() => {
            let pending: Vec<usize> = (0..m.withdrawals.len())
                .filter(|w| m.withdrawals[*w].status == "pending")
                .collect();
            let w = mostly(rng, &pending, |rng| rng.gen_range(0..m.withdrawals.len()));
            Op::DecideWithdrawal {
                w,
                approve: rng.gen_bool(0.7),
            }
        }
        91..=92 if m.orders.iter().any(|o| o.payment.is_some()) => {
            let checkouts: Vec<usize> = (0..m.orders.len())
                .filter(|o| m.orders[*o].payment.is_some())
                .collect();
            let waiting: Vec<usize> = checkouts
                .iter()
                .copied()
                .filter(|o| matches!(m.orders[*o].payment_status, "pending" | "expired"))
                .collect();
            let o = mostly(rng, &waiting, |rng| one(rng, &checkouts));
            let how = match rng.gen_range(0..3) {
                0 => Pay::Succeed,
                1 => Pay::Fail,
                _ => Pay::Later,
            };
            Op::Settle { o, how }
        }
        93..=96 if !m.orders.is_empty() => {
            let o = rng.gen_range(0..m.orders.len());
            let buyer = if rng.gen_bool(0.97) {
                m.orders[o].buyer
            } else {
                one(rng, &buyers)
            };
            Op::OpenDispute { buyer, o }
        }
        97..=99 if !m.disputes.is_empty() => {
            let open: Vec<usize> = (0..m.disputes.len())
                .filter(|d| m.disputes[*d].status == "open")
                .collect();
            let d = mostly(rng, &open, |rng| rng.gen_range(0..m.disputes.len()));
            Op::DecideDispute {
                d,
                refund: rng.gen_bool(0.6),
            }
        }
        _ => Op::TopUp {
            u: one(rng, &buyers[1..]),
            amount: rng.gen_range(5..=100) * 100_000,
            pay: true,
        },
    }
}

fn class(i: usize) -> Class {
    Class {
        region: CLASSES[i].0.into(),
        vintage: CLASSES[i].1,
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The platform's users, the model's empty market, and the opening issuances and top-ups.
async fn set_up(pool: PgPool) -> Soak {
    // The harness keeps the clock: a waiting checkout's payment expires when `Op::Settle`
    // says so, never by itself during a long run.
    let app = TestApp::spawn_configured(pool, |c| c.payments.timeout_secs = 30 * 24 * 3600).await;
    methodology::ensure_defaults(&app.pool).await.unwrap();
    let s = settings::current(&app.pool).await.unwrap();
    let version = methodology::active(&app.pool).await.unwrap();
    let model = Model::new(
        s.fees(),
        WithdrawalRules {
            min: s.withdrawal_min,
            max: s.withdrawal_max,
            daily_max: s.withdrawal_daily_max,
            fee: s.withdrawal_fee,
        },
        version.methodology,
        app.state.config.payments.max_top_up,
    );
    let admin = app.user(AppRole::Admin, "soak-admin@example.com").await;
    let cva = app.user(AppRole::Cva, "soak-cva@example.com").await;
    let mut soak = Soak {
        model: Mutex::new(model),
        users: Vec::new(),
        jobs: Default::default(),
        tally: Tally::default(),
        admin,
        cva,
        keys: AtomicUsize::new(0),
        app,
    };
    for (role, n, app_role) in [
        (Role::Owner, OWNERS, AppRole::EvOwner),
        (Role::Buyer, BUYERS, AppRole::Buyer),
    ] {
        for i in 0..n {
            let email = format!("soak-{}-{i}@example.com", app_role.as_str());
            let id = soak.app.user(app_role, &email).await;
            // One buyer's identity is never checked: their withdrawals are refused.
            let kyc = !(role == Role::Buyer && i == 0);
            if kyc {
                sqlx::query("UPDATE users SET kyc_verified_at = now() WHERE id = $1")
                    .bind(id)
                    .execute(&soak.app.pool)
                    .await
                    .unwrap();
            }
            soak.model.get_mut().unwrap().add_user(id, role, kyc);
            soak.users.push(Default::default());
        }
    }
    let (owners, buyers) = {
        let m = soak.model.get_mut().unwrap();
        (m.users_of(Role::Owner), m.users_of(Role::Buyer))
    };
    let mut opening = Vec::new();
    for (n, owner) in owners.iter().enumerate() {
        for c in 0..CLASSES.len() {
            if (n + c) % 3 != 2 {
                opening.push(Op::Issue {
                    owner: *owner,
                    class: class(c),
                    gross: 1_000_000,
                });
            }
        }
    }
    // The first buyer never tops up: they pay at checkout (and are refused elsewhere).
    for u in buyers.into_iter().skip(1) {
        opening.push(Op::TopUp {
            u,
            amount: 20_000_000,
            pay: true,
        });
    }
    for op in opening {
        let name = op.name();
        let v = soak.run(op).await;
        assert!(matches!(v, Verdict::Ok), "opening {name}: {v:?}");
    }
    soak
}

#[sqlx::test(migrations = "../migrations")]
async fn soak_against_the_model(pool: PgPool) {
    let operations = env_number("EVCX_SOAK_OPS", 1_000) as usize;
    let workers = env_number("EVCX_SOAK_WORKERS", 8).max(1) as usize;
    let seed = env_number(
        "EVCX_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    println!("soak: {operations} operations, {workers} workers, seed {seed}");
    let soak = Arc::new(set_up(pool).await);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (soak, next) = (soak.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64));
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= operations {
                    return;
                }
                let op = pick(&soak.model.lock().unwrap(), &mut rng);
                let name = op.name();
                let verdict = soak.run(op).await;
                soak.tally.count(name, verdict);
                if (n + 1) % 10_000 == 0 {
                    println!(
                        "soak: {} operations in {:.0} s",
                        n + 1,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a soak worker panicked");
    }
    let seconds = started.elapsed().as_secs_f64();
    compare(&soak).await;
    reconciled(&soak.app.pool).await;

    let t = &soak.tally;
    for (op, [ok, refused, mismatched]) in t.per_op.lock().unwrap().iter() {
        let how: Vec<String> = t
            .refusals
            .lock()
            .unwrap()
            .iter()
            .filter(|((o, _), _)| o == op)
            .map(|((_, how), n)| format!("{how}:{n}"))
            .collect();
        println!(
            "soak: {op:<18} ok={ok:<6} refused={refused:<6} mismatches={mismatched} ({})",
            how.join(" ")
        );
    }
    let m = soak.model.lock().unwrap();
    println!(
        "BENCH soak operations={operations} ok={} refused={} busy={} mismatches={} orders={} listings={} ops_per_s={:.0} seconds={:.1} workers={workers} seed={seed}",
        t.ok.load(Ordering::Relaxed),
        t.refused.load(Ordering::Relaxed),
        t.busy.load(Ordering::Relaxed),
        t.mismatches.load(Ordering::Relaxed),
        m.orders.len(),
        m.listings.len(),
        operations as f64 / seconds,
        seconds,
    );
    let notes = t.notes.lock().unwrap();
    assert_eq!(
        t.mismatches.load(Ordering::Relaxed),
        0,
        "the platform differs from the model:\n{}",
        notes.join("\n")
    );
}

/// Every balance, serial block, listing, auction, order, withdrawal and dispute of the
/// platform against the model's; each difference is a mismatch.
async fn compare(soak: &Soak) {
    let m = soak.model.lock().unwrap();
    let pool = &soak.app.pool;
    let t = &soak.tally;
    let differ = |what: String| t.mismatch(what);
    let user_of: HashMap<Uuid, User> = m.users.iter().enumerate().map(|(i, u)| (u.id, i)).collect();

    // Balances.
    let rows: Vec<(Option<Uuid>, String, String, bool, Decimal)> = sqlx::query_as(
        "SELECT owner_id, asset, kind, scope IS NOT NULL, sum(balance) FROM ledger_accounts
         GROUP BY 1, 2, 3, 4",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut real: BTreeMap<(Option<User>, String), Decimal> = BTreeMap::new();
    for (owner, asset, kind, scoped, balance) in rows {
        let who = owner.map(|o| *user_of.get(&o).unwrap_or(&usize::MAX));
        let what = format!("{asset}/{kind}{}", if scoped { "/listings" } else { "" });
        *real.entry((who, what)).or_default() += balance;
    }
    let mut want: BTreeMap<(Option<User>, String), Decimal> = BTreeMap::new();
    for (u, user) in m.users.iter().enumerate() {
        let u = Some(u);
        want.insert((u, "money/available".into()), user.money);
        want.insert((u, "money/held".into()), user.held);
    }
    for (acct, by) in &m.serials {
        let kg: i64 = by.values().flatten().map(SerialRange::len).sum();
        let key = match acct {
            Acct::Available(u) => (Some(*u), "credit/available".to_owned()),
            Acct::Retired(u) => (Some(*u), "credit/retired".to_owned()),
            Acct::Listing(l) => (
                Some(m.listings[*l].seller),
                "credit/held/listings".to_owned(),
            ),
            Acct::BufferPool => (None, "credit/buffer_pool".to_owned()),
        };
        *want.entry(key).or_default() += Decimal::from(kg);
    }
    want.insert((None, "money/platform_fees".into()), m.platform_fees);
    want.insert((None, "money/gateway_clearing".into()), m.clearing);
    let issued: i64 = m.issuances.values().map(|(r, _)| r.len()).sum();
    want.insert(
        (None, "credit/issuance_source".into()),
        Decimal::from(-issued),
    );
    for key in real.keys().chain(want.keys()).collect::<BTreeSet<_>>() {
        let (r, w) = (
            real.get(key).copied().unwrap_or_default(),
            want.get(key).copied().unwrap_or_default(),
        );
        if r != w {
            differ(format!("balance {key:?}: platform {r}, model {w}"));
        }
    }

    // Serial blocks: disjoint, in the right accounts, retired ones stamped.
    let blocks: Vec<(Option<Uuid>, String, Option<String>, i64, i64, i64, bool)> = sqlx::query_as(
        "SELECT a.owner_id, a.kind, l.number, lower(i.serials), lower(b.serials), upper(b.serials),
                b.retirement_id IS NOT NULL
         FROM serial_blocks b JOIN ledger_accounts a ON a.id = b.account_id
         JOIN credit_issuances i ON i.id = b.issuance_id LEFT JOIN listings l ON l.id = a.scope
         ORDER BY lower(b.serials)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut end = i64::MIN;
    let mut real: BTreeMap<Acct, BTreeMap<i64, Vec<SerialRange>>> = BTreeMap::new();
    for (owner, kind, listing, issuance, start, stop, stamped) in blocks {
        if start < end {
            differ(format!(
                "serial block {start}–{stop} overlaps the one before"
            ));
        }
        end = stop;
        let acct = match (owner.map(|o| user_of[&o]), kind.as_str(), listing) {
            (Some(u), "available", None) => Acct::Available(u),
            (Some(u), "retired", None) => Acct::Retired(u),
            (Some(_), "held", Some(number)) => {
                Acct::Listing(m.listing_of(&number).expect("a soak listing"))
            }
            (None, "buffer_pool", None) => Acct::BufferPool,
            other => {
                differ(format!(
                    "serial block {start}–{stop} in an unexpected account {other:?}"
                ));
                continue;
            }
        };
        if stamped != matches!(acct, Acct::Retired(_)) {
            differ(format!(
                "serial block {start}–{stop} in {acct:?} stamped retired: {stamped}"
            ));
        }
        real.entry(acct)
            .or_default()
            .entry(issuance)
            .or_default()
            .push(SerialRange::new(start, stop));
    }
    let normal = |by: &BTreeMap<Acct, BTreeMap<i64, Vec<SerialRange>>>| {
        let mut out: BTreeMap<Acct, BTreeMap<i64, Vec<SerialRange>>> = BTreeMap::new();
        for (acct, per) in by {
            for (issuance, ranges) in per {
                if !ranges.is_empty() {
                    out.entry(*acct)
                        .or_default()
                        .insert(*issuance, serial::coalesce(ranges.clone()));
                }
            }
        }
        out
    };
    let (real, want) = (normal(&real), normal(&m.serials));
    for acct in real.keys().chain(want.keys()).collect::<BTreeSet<_>>() {
        if real.get(acct) != want.get(acct) {
            differ(format!(
                "serials of {acct:?}: platform {:?}, model {:?}",
                real.get(acct),
                want.get(acct)
            ));
        }
    }

    // Listings and auctions.
    type ListingRow = (
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        Decimal,
        i64,
        String,
        String,
        i32,
    );
    let rows: Vec<ListingRow> = sqlx::query_as(
        "SELECT number, status, listed_kg, quantity_kg, sold_kg, pending_kg, price_per_t, min_lot_kg, kind,
                region, vintage
         FROM listings",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    if rows.len() != m.listings.len() {
        differ(format!(
            "{} listings, the model {}",
            rows.len(),
            m.listings.len()
        ));
    }
    for r in rows {
        let Some(l) = m.listing_of(&r.0) else {
            differ(format!("listing {} unknown to the model", r.0));
            continue;
        };
        let w = &m.listings[l];
        let want = (
            w.number.clone(),
            w.status.to_owned(),
            w.listed,
            w.quantity,
            w.sold,
            w.pending,
            w.price,
            w.min_lot,
            if w.auction.is_some() {
                "auction"
            } else {
                "fixed"
            }
            .to_owned(),
            w.class.region.clone(),
            w.class.vintage,
        );
        if r != want {
            differ(format!("listing: platform {r:?}, model {want:?}"));
        }
    }
    type AuctionRow = (
        String,
        Decimal,
        Option<Uuid>,
        Option<Decimal>,
        i32,
        bool,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<AuctionRow> = sqlx::query_as(
        "SELECT l.number, a.price, a.leader_id, a.leader_max, a.bid_count, a.closed_at IS NOT NULL, a.outcome, o.number
         FROM auctions a JOIN listings l ON l.id = a.listing_id LEFT JOIN orders o ON o.id = a.order_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for r in rows {
        let Some(a) = m
            .listing_of(&r.0)
            .and_then(|l| m.listings[l].auction.as_ref())
        else {
            differ(format!("auction {} unknown to the model", r.0));
            continue;
        };
        let (leader, max) = match (a.closed, a.state.leader) {
            (false, Some((who, max))) => (Some(who), Some(max)),
            (true, Some((who, max))) => (Some(who), Some(max)),
            _ => (None, None),
        };
        let want = (
            r.0.clone(),
            a.state.price,
            leader,
            max,
            a.state.bids as i32,
            a.closed,
            a.outcome.map(str::to_owned),
            a.order.clone(),
        );
        if r != want {
            differ(format!("auction: platform {r:?}, model {want:?}"));
        }
    }

    // Orders, with the serials each sale moved.
    type OrderRow = (
        String,
        String,
        Uuid,
        Uuid,
        i64,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        Decimal,
        String,
        bool,
    );
    let rows: Vec<OrderRow> = sqlx::query_as(
        "SELECT o.number, l.number, o.buyer_id, o.seller_id, o.quantity_kg, o.price_per_t, o.amount, o.buyer_fee,
                o.seller_fee, o.buyer_pays, o.seller_receives, o.status, o.retirement_id IS NOT NULL
         FROM orders o JOIN listings l ON l.id = o.listing_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    if rows.len() != m.orders.len() {
        differ(format!(
            "{} orders, the model {}",
            rows.len(),
            m.orders.len()
        ));
    }
    let by_number: HashMap<&str, usize> = m
        .orders
        .iter()
        .enumerate()
        .map(|(i, o)| (o.number.as_str(), i))
        .collect();
    for r in rows {
        let Some(o) = by_number.get(r.0.as_str()).map(|i| &m.orders[*i]) else {
            differ(format!("order {} unknown to the model", r.0));
            continue;
        };
        let s = o.settlement;
        let r = (
            (r.0, r.1, r.2, r.3, r.4, r.5),
            (r.6, r.7, r.8, r.9, r.10, r.11, r.12),
        );
        let want = (
            (
                o.number.clone(),
                m.listings[o.listing].number.clone(),
                m.users[o.buyer].id,
                m.users[o.seller].id,
                o.kg,
                o.price,
            ),
            (
                s.amount,
                s.buyer_fee,
                s.seller_fee,
                s.buyer_pays,
                s.seller_receives,
                o.status.to_owned(),
                o.retired && o.status != "cancelled",
            ),
        );
        if r != want {
            differ(format!("order: platform {r:?}, model {want:?}"));
        }
    }
    let moved: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT o.number, lower(s.serials), upper(s.serials) FROM orders o
         JOIN serial_movements s ON s.transfer_id = o.transfer_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut real: HashMap<String, Vec<SerialRange>> = HashMap::new();
    for (number, start, end) in moved {
        real.entry(number)
            .or_default()
            .push(SerialRange::new(start, end));
    }
    for o in &m.orders {
        let r = serial::coalesce(real.remove(&o.number).unwrap_or_default());
        if r != serial::coalesce(o.serials.clone()) {
            differ(format!(
                "order {} moved serials {r:?}, the model {:?}",
                o.number, o.serials
            ));
        }
    }

    // Checkouts' payments.
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, status FROM payments WHERE purpose = 'checkout'")
            .fetch_all(pool)
            .await
            .unwrap();
    let statuses: HashMap<Uuid, &str> = m
        .orders
        .iter()
        .filter_map(|o| o.payment.map(|p| (p, o.payment_status)))
        .collect();
    if rows.len() != statuses.len() {
        differ(format!(
            "{} checkout payments, the model {}",
            rows.len(),
            statuses.len()
        ));
    }
    for (id, status) in rows {
        if statuses.get(&id) != Some(&status.as_str()) {
            differ(format!(
                "checkout payment {id}: platform {status}, model {:?}",
                statuses.get(&id)
            ));
        }
    }

    // Withdrawals and disputes.
    let rows: Vec<(String, String, Decimal, Decimal)> =
        sqlx::query_as("SELECT number, status, amount, fee FROM withdrawals")
            .fetch_all(pool)
            .await
            .unwrap();
    if rows.len() != m.withdrawals.len() {
        differ(format!(
            "{} withdrawals, the model {}",
            rows.len(),
            m.withdrawals.len()
        ));
    }
    for r in rows {
        match m.withdrawals.iter().find(|w| w.number == r.0) {
            Some(w) if (w.status, w.amount, w.fee) == (r.1.as_str(), r.2, r.3) => {}
            w => differ(format!("withdrawal: platform {r:?}, model {w:?}")),
        }
    }
    let rows: Vec<(String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT d.number, o.number, d.status, d.returned_kg FROM disputes d JOIN orders o ON o.id = d.order_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    if rows.len() != m.disputes.len() {
        differ(format!(
            "{} disputes, the model {}",
            rows.len(),
            m.disputes.len()
        ));
    }
    for r in rows {
        match m.disputes.iter().find(|d| d.number == r.0) {
            Some(d)
                if (m.orders[d.order].number.as_str(), d.status, d.returned_kg)
                    == (r.1.as_str(), r.2.as_str(), r.3) => {}
            d => differ(format!("dispute: platform {r:?}, model {d:?}")),
        }
    }
}
