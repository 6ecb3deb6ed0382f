//! The ledger (ARCHITECTURE §2): a model-based property test, a concurrency test, idempotency,
//! and the invariants the schema itself enforces.

use super::support::reconciled;
use app::server::ledger::{self, AccountKind, Asset, LedgerError, Leg, Posted, Transfer};
use proptest::prelude::*;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

async fn user(conn: &mut PgConnection) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, role, full_name, phone)
         VALUES ($1, $2, 'x', 'buyer', 'Ledger Test', '+84900000000')",
    )
    .bind(id)
    .bind(format!("{}@ledger.test", id.simple()))
    .execute(conn)
    .await
    .unwrap();
    id
}

fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

async fn available(conn: &mut PgConnection, owner: Uuid) -> i64 {
    ledger::user_account(conn, owner, Asset::Money, AccountKind::Available)
        .await
        .unwrap()
}

/// Money in from the gateway (the clearing account may go below zero: it is the outside world).
async fn fund(
    conn: &mut PgConnection,
    owner: Uuid,
    amount: Decimal,
) -> Result<Posted, LedgerError> {
    let to = available(conn, owner).await;
    let clearing = ledger::platform_account(conn, Asset::Money, AccountKind::GatewayClearing)
        .await
        .unwrap();
    ledger::transfer(
        conn,
        Transfer {
            kind: "top_up",
            legs: vec![Leg::new(clearing, -amount), Leg::new(to, amount)],
            ..Transfer::default()
        },
    )
    .await
}

// ---------------------------------------------------------------- model-based property test

#[derive(Debug, Clone)]
enum Op {
    Fund {
        user: usize,
        cents: i64,
    },
    Pay {
        from: usize,
        to: usize,
        cents: i64,
    },
    Hold {
        user: usize,
        cents: i64,
    },
    Post {
        hold: usize,
        cents: i64,
        to: usize,
    },
    Void {
        hold: usize,
    },
    /// Void one hold (if any) and hold for a user in the same two statements.
    Rehold {
        release: Option<usize>,
        user: usize,
        cents: i64,
    },
}

const USERS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    let cents = 1i64..5_000;
    prop_oneof![
        (user.clone(), cents.clone()).prop_map(|(user, cents)| Op::Fund { user, cents }),
        (user.clone(), user.clone(), cents.clone()).prop_map(|(from, to, cents)| Op::Pay {
            from,
            to,
            cents
        }),
        (user.clone(), cents.clone()).prop_map(|(user, cents)| Op::Hold { user, cents }),
        (0usize..8, cents.clone(), user.clone()).prop_map(|(hold, cents, to)| Op::Post {
            hold,
            cents,
            to
        }),
        (0usize..8).prop_map(|hold| Op::Void { hold }),
        (proptest::option::of(0usize..8), user.clone(), cents.clone()).prop_map(
            |(release, user, cents)| Op::Rehold {
                release,
                user,
                cents
            }
        ),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum HoldState {
    Pending(i64),
    Closed,
}

/// What the ledger should do, in plain integers (cents).
#[derive(Debug, Default, Clone)]
struct Model {
    available: [i64; USERS],
    held: [i64; USERS],
    holds: Vec<(usize, HoldState)>,
}

#[derive(Debug, PartialEq)]
enum Expect {
    Ok,
    Insufficient,
    Closed,
    Exceeded,
    Invalid,
}

impl Model {
    fn apply(&mut self, op: &Op) -> Expect {
        match *op {
            Op::Fund { user, cents } => {
                self.available[user] += cents;
                Expect::Ok
            }
            Op::Pay { from, to, cents } => {
                if from == to {
                    return Expect::Invalid;
                }
                if self.available[from] < cents {
                    return Expect::Insufficient;
                }
                self.available[from] -= cents;
                self.available[to] += cents;
                Expect::Ok
            }
            Op::Hold { user, cents } => {
                if self.available[user] < cents {
                    return Expect::Insufficient;
                }
                self.available[user] -= cents;
                self.held[user] += cents;
                self.holds.push((user, HoldState::Pending(cents)));
                Expect::Ok
            }
            Op::Post { hold, cents, to } => {
                let Some(&(owner, state)) = self.holds.get(hold) else {
                    return Expect::Invalid;
                };
                match state {
                    HoldState::Closed => Expect::Closed,
                    HoldState::Pending(left) if left < cents => Expect::Exceeded,
                    HoldState::Pending(left) => {
                        self.held[owner] -= cents;
                        self.available[to] += cents;
                        self.holds[hold].1 = if left == cents {
                            HoldState::Closed
                        } else {
                            HoldState::Pending(left - cents)
                        };
                        Expect::Ok
                    }
                }
            }
            Op::Void { hold } => {
                let Some(&(owner, state)) = self.holds.get(hold) else {
                    return Expect::Invalid;
                };
                match state {
                    HoldState::Closed => Expect::Closed,
                    HoldState::Pending(left) => {
                        self.held[owner] -= left;
                        self.available[owner] += left;
                        self.holds[hold].1 = HoldState::Closed;
                        Expect::Ok
                    }
                }
            }
            // A void then a hold, all or nothing.
            Op::Rehold {
                release,
                user,
                cents,
            } => {
                let mut next = self.clone();
                if let Some(hold) = release {
                    let voided = next.apply(&Op::Void { hold });
                    if voided != Expect::Ok {
                        return voided;
                    }
                }
                let held = next.apply(&Op::Hold { user, cents });
                if held == Expect::Ok {
                    *self = next;
                }
                held
            }
        }
    }
}

fn classify(r: &Result<(), LedgerError>) -> Expect {
    match r {
        Ok(()) => Expect::Ok,
        Err(LedgerError::Insufficient { .. }) => Expect::Insufficient,
        Err(LedgerError::HoldClosed) => Expect::Closed,
        Err(LedgerError::HoldExceeded { .. }) => Expect::Exceeded,
        Err(LedgerError::Invalid(_)) => Expect::Invalid,
        Err(other) => panic!("unexpected ledger error {other:?}"),
    }
}

async fn run_case(pool: &PgPool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut conn = pool.acquire().await.unwrap();
    let mut users = Vec::new();
    for _ in 0..USERS {
        users.push(user(&mut conn).await);
    }
    drop(conn);
    let mut model = Model::default();
    let mut holds: Vec<Uuid> = Vec::new();
    for op in &ops {
        let expected = model.apply(op);
        let mut tx = pool.begin().await.unwrap();
        let result: Result<(), LedgerError> = match *op {
            Op::Fund { user, cents } => fund(&mut tx, users[user], money(cents)).await.map(|_| ()),
            Op::Pay { from, to, cents } => {
                let (a, b) = (
                    available(&mut tx, users[from]).await,
                    available(&mut tx, users[to]).await,
                );
                ledger::transfer(
                    &mut tx,
                    Transfer {
                        kind: "pay",
                        legs: vec![Leg::new(a, -money(cents)), Leg::new(b, money(cents))],
                        ..Transfer::default()
                    },
                )
                .await
                .map(|_| ())
            }
            Op::Hold { user, cents } => ledger::hold(
                &mut tx,
                users[user],
                Asset::Money,
                money(cents),
                "test",
                None,
            )
            .await
            .map(|id| holds.push(id)),
            Op::Post { hold, cents, to } => match holds.get(hold) {
                None => Err(LedgerError::Invalid("no such hold in this case".into())),
                Some(&id) => {
                    let dest = available(&mut tx, users[to]).await;
                    ledger::post(
                        &mut tx,
                        id,
                        money(cents),
                        vec![Leg::new(dest, money(cents))],
                        Transfer::default(),
                    )
                    .await
                    .map(|_| ())
                }
            },
            Op::Void { hold } => match holds.get(hold) {
                None => Err(LedgerError::Invalid("no such hold in this case".into())),
                Some(&id) => ledger::void(&mut tx, id, None).await.map(|_| ()),
            },
            Op::Rehold {
                release,
                user,
                cents,
            } => match release.map(|h| holds.get(h).copied()) {
                Some(None) => Err(LedgerError::Invalid("no such hold in this case".into())),
                release => ledger::rehold(
                    &mut tx,
                    release.flatten(),
                    users[user],
                    money(cents),
                    "test",
                    None,
                )
                .await
                .map(|id| holds.push(id)),
            },
        };
        let got = classify(&result);
        if result.is_ok() {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        prop_assert_eq!(&got, &expected, "{:?} answered {:?}", op, result);

        // The database agrees with the model after every step, refused or not.
        let mut conn = pool.acquire().await.unwrap();
        for (i, &u) in users.iter().enumerate() {
            let a = ledger::balance(&mut conn, u, Asset::Money, AccountKind::Available)
                .await
                .unwrap();
            let h = ledger::balance(&mut conn, u, Asset::Money, AccountKind::Held)
                .await
                .unwrap();
            prop_assert_eq!(
                (a, h),
                (money(model.available[i]), money(model.held[i])),
                "user {} after {:?}",
                i,
                op
            );
        }
    }
    let mut conn = pool.acquire().await.unwrap();
    let r = ledger::reconcile(&mut conn).await.unwrap();
    prop_assert!(r.ok(), "{:?}", r.problems);
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn the_ledger_behaves_like_its_model(pool: PgPool) {
    let options = (*pool.connect_options()).clone();
    // proptest drives synchronous closures: run it on a thread with its own runtime and pool.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pool = runtime
            .block_on(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect_with(options),
            )
            .unwrap();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 24,
            ..ProptestConfig::default()
        });
        let outcome = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
            runtime.block_on(run_case(&pool, ops))
        });
        runtime.block_on(pool.close());
        if let Err(e) = outcome {
            panic!("{e}");
        }
    })
    .join()
    .unwrap();
}

// ---------------------------------------------------------------- concurrency

#[sqlx::test(migrations = "../migrations")]
async fn a_thousand_concurrent_operations_keep_every_invariant(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let mut users = Vec::new();
    for _ in 0..4 {
        let u = user(&mut conn).await;
        fund(&mut conn, u, money(10_000)).await.unwrap();
        users.push(u);
    }
    drop(conn);
    let users = std::sync::Arc::new(users);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8u64 {
        let (pool, users) = (pool.clone(), users.clone());
        tasks.spawn(async move {
            let mut seed = worker * 7919 + 1;
            let mut next = move |n: u64| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) % n
            };
            let (mut done, mut refused) = (0, 0);
            let mut attempts = 0;
            while done + refused < 125 {
                attempts += 1;
                assert!(attempts < 1000, "too many retries");
                let from = users[next(4) as usize];
                let to = users[next(4) as usize];
                let cents = 1 + next(3_000) as i64;
                let mut tx = pool.begin().await.unwrap();
                let outcome = match next(4) {
                    0 if from != to => {
                        let (a, b) = (available(&mut tx, from).await, available(&mut tx, to).await);
                        ledger::transfer(
                            &mut tx,
                            Transfer {
                                kind: "pay",
                                legs: vec![Leg::new(a, -money(cents)), Leg::new(b, money(cents))],
                                ..Transfer::default()
                            },
                        )
                        .await
                        .map(|_| ())
                    }
                    1 => match ledger::hold(&mut tx, from, Asset::Money, money(cents), "bid", None)
                        .await
                    {
                        Ok(hold) => {
                            let dest = available(&mut tx, to).await;
                            let part = money(cents / 2 + 1);
                            ledger::post(
                                &mut tx,
                                hold,
                                part,
                                vec![Leg::new(dest, part)],
                                Transfer::default(),
                            )
                            .await
                            .map(|_| ())
                        }
                        Err(e) => Err(e),
                    },
                    // Outbid: `to`'s hold replaces `from`'s, as an auction's leader changes.
                    2 => match ledger::hold(&mut tx, from, Asset::Money, money(cents), "bid", None)
                        .await
                    {
                        Ok(hold) => {
                            ledger::rehold(&mut tx, Some(hold), to, money(cents + 1), "bid", None)
                                .await
                                .map(|_| ())
                        }
                        Err(e) => Err(e),
                    },
                    _ => match ledger::hold(&mut tx, from, Asset::Money, money(cents), "bid", None)
                        .await
                    {
                        Ok(hold) => ledger::void(&mut tx, hold, None).await.map(|_| ()),
                        Err(e) => Err(e),
                    },
                };
                match outcome {
                    Ok(()) => {
                        tx.commit().await.unwrap();
                        done += 1;
                    }
                    Err(LedgerError::Insufficient { .. }) => {
                        tx.rollback().await.unwrap();
                        refused += 1;
                    }
                    // Two users paying each other from holds can deadlock; PostgreSQL picks
                    // one to fail, nothing of it is written, and it runs again.
                    Err(LedgerError::Retry) => tx.rollback().await.unwrap(),
                    Err(e) => panic!("{e:?}"),
                }
            }
            (done, refused)
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        let (done, refused) = r.unwrap();
        total += done + refused;
    }
    assert_eq!(total, 1000);
    reconciled(&pool).await;
    // Money was only moved between the four users: they still hold all of it.
    let mut conn = pool.acquire().await.unwrap();
    let mut sum = Decimal::ZERO;
    for &u in users.iter() {
        sum += ledger::balance(&mut conn, u, Asset::Money, AccountKind::Available)
            .await
            .unwrap();
        sum += ledger::balance(&mut conn, u, Asset::Money, AccountKind::Held)
            .await
            .unwrap();
    }
    assert_eq!(sum, money(40_000));
}

// ---------------------------------------------------------------- idempotency and schema

#[sqlx::test(migrations = "../migrations")]
async fn a_retried_transfer_with_the_same_key_is_written_once(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let (a, b) = (user(&mut conn).await, user(&mut conn).await);
    fund(&mut conn, a, money(1000)).await.unwrap();
    let (from, to) = (available(&mut conn, a).await, available(&mut conn, b).await);
    let pay = || Transfer {
        kind: "pay",
        legs: vec![Leg::new(from, money(-300)), Leg::new(to, money(300))],
        idempotency_key: Some("order-42"),
        ..Transfer::default()
    };
    let first = ledger::transfer(&mut conn, pay()).await.unwrap();
    let again = ledger::transfer(&mut conn, pay()).await.unwrap();
    assert!(matches!(first, Posted::New(_)));
    assert_eq!(again, Posted::Replayed(first.id()));
    assert_eq!(
        ledger::balance(&mut conn, b, Asset::Money, AccountKind::Available)
            .await
            .unwrap(),
        money(300)
    );
    // Unbalanced, fractional-cent and overdrawing transfers are refused and write nothing.
    let refused = [
        vec![Leg::new(from, money(-100)), Leg::new(to, money(99))],
        vec![
            Leg::new(from, Decimal::new(-1, 3)),
            Leg::new(to, Decimal::new(1, 3)),
        ],
        vec![Leg::new(from, money(-800)), Leg::new(to, money(800))],
    ];
    for legs in refused {
        let r = ledger::transfer(
            &mut conn,
            Transfer {
                kind: "pay",
                legs,
                ..Transfer::default()
            },
        )
        .await;
        assert!(r.is_err(), "{r:?}");
    }
    assert_eq!(
        ledger::balance(&mut conn, a, Asset::Money, AccountKind::Available)
            .await
            .unwrap(),
        money(700)
    );
    drop(conn);
    reconciled(&pool).await;
}

/// A transfer written by hand, without the ledger's code, for its entries to be forged.
async fn forged_transfer(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("INSERT INTO ledger_transfers (kind) VALUES ('forged') RETURNING id")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn the_schema_refuses_what_the_code_must_never_do(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let a = user(&mut conn).await;
    fund(&mut conn, a, money(500)).await.unwrap();
    let account = available(&mut conn, a).await;
    let constraint = |e: sqlx::Error| match e {
        sqlx::Error::Database(d) => d
            .constraint()
            .map(str::to_owned)
            .unwrap_or_else(|| d.message().to_owned()),
        other => other.to_string(),
    };

    // Entries are append-only.
    let e = sqlx::query("UPDATE ledger_entries SET amount = amount * 2")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(constraint(e).contains("append-only"));
    let e = sqlx::query("DELETE FROM ledger_transfers")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert!(constraint(e).contains("append-only"));
    // A user balance cannot go below zero.
    let e = sqlx::query("UPDATE ledger_accounts SET balance = -1 WHERE id = $1")
        .bind(account)
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert_eq!(constraint(e), "ledger_accounts_user_not_negative");
    // Accounts stay, with their id and asset: entries name them.
    for change in [
        "DELETE FROM ledger_accounts WHERE id = $1",
        "UPDATE ledger_accounts SET asset = 'credit' WHERE id = $1",
    ] {
        let e = sqlx::query(change)
            .bind(account)
            .execute(&mut *conn)
            .await
            .unwrap_err();
        assert_eq!(constraint(e), "ledger_accounts_kept", "{change}");
    }
    // Entries name a transfer that exists and an account that exists and holds their asset.
    let mut tx = pool.begin().await.unwrap();
    let t = forged_transfer(&mut tx).await;
    for (transfer, account, asset, refused_by) in [
        (
            t + 1_000,
            account,
            "money",
            "ledger_entries_transfer_exists",
        ),
        (t, account + 1_000, "money", "ledger_entries_account_exists"),
        (t, account, "credit", "ledger_entries_account_exists"),
    ] {
        let mut step = sqlx::Connection::begin(&mut *tx).await.unwrap();
        let e = sqlx::query(
            "INSERT INTO ledger_entries (transfer_id, account_id, asset, amount, balance_after)
             VALUES ($1, $2, $3, 10, 510), ($1, $2, $3, -10, 500)",
        )
        .bind(transfer)
        .bind(account)
        .bind(asset)
        .execute(&mut *step)
        .await
        .unwrap_err();
        assert_eq!(constraint(e), refused_by, "{transfer} {account} {asset}");
        step.rollback().await.unwrap();
    }
    tx.rollback().await.unwrap();
    // A transfer that does not balance is refused by the statement that writes it.
    let mut tx = pool.begin().await.unwrap();
    let t = forged_transfer(&mut tx).await;
    let unbalanced = sqlx::query("INSERT INTO ledger_entries (transfer_id, account_id, asset, amount, balance_after) VALUES ($1, $2, 'money', 10, 510)")
        .bind(t)
        .bind(account)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(constraint(unbalanced), "ledger_transfer_balanced");
    tx.rollback().await.unwrap();
    // Retired credits never move, not even in a transfer that balances.
    let mut tx = pool.begin().await.unwrap();
    let credit_account = |kind: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "WITH made AS (INSERT INTO ledger_accounts (owner_id, asset, kind) VALUES ($1, 'credit', $2)
                           ON CONFLICT DO NOTHING RETURNING id)
             SELECT id FROM made UNION ALL
             SELECT id FROM ledger_accounts WHERE owner_id = $1 AND asset = 'credit' AND kind = $2 AND scope IS NULL",
        )
        .bind(a)
        .bind(kind)
    };
    let retired: i64 = credit_account("retired").fetch_one(&mut *tx).await.unwrap();
    let back: i64 = credit_account("available")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let t = forged_transfer(&mut tx).await;
    let unretired = sqlx::query(
        "INSERT INTO ledger_entries (transfer_id, account_id, asset, amount, balance_after)
         VALUES ($1, $2, 'credit', -1, 0), ($1, $3, 'credit', 1, 1)",
    )
    .bind(t)
    .bind(retired)
    .bind(back)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(constraint(unretired), "retired_is_final");
    tx.rollback().await.unwrap();
    // A closed hold cannot reopen.
    let hold = ledger::hold(&mut conn, a, Asset::Money, money(100), "test", None)
        .await
        .unwrap();
    ledger::void(&mut conn, hold, None).await.unwrap();
    assert_eq!(
        ledger::void(&mut conn, hold, None).await,
        Err(LedgerError::HoldClosed)
    );
    let e = sqlx::query("UPDATE ledger_holds SET status = 'pending', remaining = 100, closed_at = NULL WHERE id = $1")
        .bind(hold)
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert_eq!(constraint(e), "ledger_hold_closed");
    drop(conn);
    reconciled(&pool).await;
}
