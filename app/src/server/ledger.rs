//! The double-entry ledger: two assets (money with 2 decimals, credits in whole kilograms),
//! accounts per user and kind plus the platform's own, transfers whose entries sum to zero per
//! asset, holds (pending transfers posted or voided exactly once), idempotency keys, and the
//! serial blocks that follow every kilogram of credit. Everything runs inside the caller's
//! transaction; a refused operation writes nothing.
//!
//! Locking: the accounts of a transfer are locked in id order, always `FOR NO KEY UPDATE`, so
//! concurrent transfers over the same accounts serialise and never deadlock among themselves,
//! while another transaction's new serial block may still refer to them: its foreign-key check's
//! `KEY SHARE` lock does not conflict. (A batch of purchases writes serial blocks into its
//! buyers' accounts before it locks any account, `post_unbooked`; a `FOR UPDATE` elsewhere would
//! wait for that batch while holding what it needs next.) Entries take no lock on the accounts
//! they name: their references are checked once per statement by the entries' trigger.

use crate::domain::serial::{self, SerialRange};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Asset {
    Money,
    Credit,
}

impl Asset {
    pub fn as_str(self) -> &'static str {
        match self {
            Asset::Money => "money",
            Asset::Credit => "credit",
        }
    }

    fn parse(s: &str) -> Asset {
        if s == "credit" {
            Asset::Credit
        } else {
            Asset::Money
        }
    }

    /// Decimal places an amount of this asset may have.
    pub fn scale(self) -> u32 {
        match self {
            Asset::Money => 2,
            Asset::Credit => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    Available,
    Held,
    Retired,
    PlatformFees,
    BufferPool,
    GatewayClearing,
    IssuanceSource,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Available => "available",
            AccountKind::Held => "held",
            AccountKind::Retired => "retired",
            AccountKind::PlatformFees => "platform_fees",
            AccountKind::BufferPool => "buffer_pool",
            AccountKind::GatewayClearing => "gateway_clearing",
            AccountKind::IssuanceSource => "issuance_source",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LedgerError {
    #[error("account {account} holds {balance}, {needed} is needed")]
    Insufficient {
        account: i64,
        balance: Decimal,
        needed: Decimal,
    },
    #[error("retired credits cannot move")]
    RetiredIsFinal,
    #[error("the hold is no longer pending")]
    HoldClosed,
    #[error("the hold has only {remaining} left")]
    HoldExceeded { remaining: Decimal },
    #[error("the hold does not exist")]
    NoSuchHold,
    #[error("invalid transfer: {0}")]
    Invalid(String),
    /// A deadlock or serialisation failure: nothing was written; run the transaction again.
    #[error("concurrent update, retry")]
    Retry,
    #[error("database: {0}")]
    Database(String),
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        if is_retryable(&e) {
            return LedgerError::Retry;
        }
        LedgerError::Database(e.to_string())
    }
}

/// A deadlock (40P01) or serialisation failure (40001): the transaction may simply run again.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

impl From<LedgerError> for crate::error::AppError {
    fn from(e: LedgerError) -> Self {
        crate::server::internal(e)
    }
}

/// One side of a transfer: a positive amount credits the account, a negative one debits it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leg {
    pub account: i64,
    pub amount: Decimal,
}

impl Leg {
    pub fn new(account: i64, amount: Decimal) -> Leg {
        Leg { account, amount }
    }
}

/// A transfer to write.
#[derive(Debug, Clone, Default)]
pub struct Transfer<'a> {
    /// What it is: "issuance", "retirement", "sale", "hold", "post", "void", …
    pub kind: &'a str,
    pub legs: Vec<Leg>,
    /// A retry with the same key returns the first transfer instead of writing a second.
    pub idempotency_key: Option<&'a str>,
    /// What it belongs to (a request, an order, …).
    pub reference: Option<String>,
    pub memo: String,
    pub actor: Option<Uuid>,
    pub hold_id: Option<Uuid>,
    /// Credits moving into a retired account are stamped with their retirement.
    pub retirement_id: Option<Uuid>,
    /// Move only serials of this region and vintage (a listing reserves one class of credits).
    pub serial_class: Option<SerialClass<'a>>,
    /// Move exactly these serials (a refund returns the order's own), instead of the lowest
    /// ones of the debited account. Only for one debited and one credited credit account.
    pub exact_serials: Option<&'a [SerialRange]>,
}

/// Credits of one grid region and vintage year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialClass<'a> {
    pub region: &'a str,
    pub vintage: i32,
}

/// The outcome of `transfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    New(i64),
    /// The idempotency key was used before; nothing was written.
    Replayed(i64),
}

impl Posted {
    pub fn id(self) -> i64 {
        match self {
            Posted::New(id) | Posted::Replayed(id) => id,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct AccountRow {
    id: i64,
    owner_id: Option<Uuid>,
    asset: String,
    kind: String,
    balance: Decimal,
}

/// The user's account of that asset and kind, created on first use.
pub async fn user_account(
    conn: &mut PgConnection,
    owner: Uuid,
    asset: Asset,
    kind: AccountKind,
) -> Result<i64, LedgerError> {
    if let Some(id) = sqlx::query_scalar(
        "SELECT id FROM ledger_accounts WHERE owner_id = $1 AND asset = $2 AND kind = $3 AND scope IS NULL",
    )
    .bind(owner)
    .bind(asset.as_str())
    .bind(kind.as_str())
    .fetch_optional(&mut *conn)
    .await?
    {
        return Ok(id);
    }
    sqlx::query(
        "INSERT INTO ledger_accounts (owner_id, asset, kind) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(owner)
    .bind(asset.as_str())
    .bind(kind.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar(
        "SELECT id FROM ledger_accounts WHERE owner_id = $1 AND asset = $2 AND kind = $3 AND scope IS NULL",
    )
    .bind(owner)
    .bind(asset.as_str())
    .bind(kind.as_str())
    .fetch_one(&mut *conn)
    .await?)
}

/// Several users' accounts in one round trip (in the order asked); any not opened yet is
/// created as `user_account` does.
pub async fn user_accounts(
    conn: &mut PgConnection,
    wanted: &[(Uuid, Asset, AccountKind)],
) -> Result<Vec<i64>, LedgerError> {
    let owners: Vec<Uuid> = wanted.iter().map(|w| w.0).collect();
    let assets: Vec<&str> = wanted.iter().map(|w| w.1.as_str()).collect();
    let kinds: Vec<&str> = wanted.iter().map(|w| w.2.as_str()).collect();
    let found: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT a.id FROM UNNEST($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY w(owner, asset, kind, n)
         LEFT JOIN ledger_accounts a
                ON a.owner_id = w.owner AND a.asset = w.asset AND a.kind = w.kind AND a.scope IS NULL
         ORDER BY w.n",
    )
    .bind(&owners)
    .bind(&assets)
    .bind(&kinds)
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = Vec::with_capacity(wanted.len());
    for (id, (owner, asset, kind)) in found.into_iter().zip(wanted) {
        ids.push(match id {
            Some(id) => id,
            None => user_account(conn, *owner, *asset, *kind).await?,
        });
    }
    Ok(ids)
}

/// `user_accounts` and one of the fee-income accounts (see `fee_account`) in one round trip.
pub async fn user_accounts_and_fees(
    conn: &mut PgConnection,
    wanted: &[(Uuid, Asset, AccountKind)],
    fee_seed: u64,
) -> Result<(Vec<i64>, i64), LedgerError> {
    let owners: Vec<Uuid> = wanted.iter().map(|w| w.0).collect();
    let assets: Vec<&str> = wanted.iter().map(|w| w.1.as_str()).collect();
    let kinds: Vec<&str> = wanted.iter().map(|w| w.2.as_str()).collect();
    let mut found: Vec<Option<i64>> = sqlx::query_scalar(
        "SELECT id FROM (
             SELECT w.n, a.id FROM UNNEST($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY w(owner, asset, kind, n)
             LEFT JOIN ledger_accounts a
                    ON a.owner_id = w.owner AND a.asset = w.asset AND a.kind = w.kind AND a.scope IS NULL
             UNION ALL
             SELECT 0, id FROM ledger_accounts
             WHERE owner_id IS NULL AND asset = 'money' AND kind = 'platform_fees' AND shard = $4) s
         ORDER BY n",
    )
    .bind(&owners)
    .bind(&assets)
    .bind(&kinds)
    .bind((fee_seed % FEE_SHARDS) as i16)
    .fetch_all(&mut *conn)
    .await?;
    if found.len() != wanted.len() + 1 {
        return Err(LedgerError::Invalid("no platform fee account".into()));
    }
    let fees = found
        .remove(0)
        .ok_or_else(|| LedgerError::Invalid("no platform fee account".into()))?;
    let mut ids = Vec::with_capacity(wanted.len());
    for (id, (owner, asset, kind)) in found.into_iter().zip(wanted) {
        ids.push(match id {
            Some(id) => id,
            None => user_account(conn, *owner, *asset, *kind).await?,
        });
    }
    Ok((ids, fees))
}

/// How many fee-income accounts the platform has (the migration creates them).
const FEE_SHARDS: u64 = 16;

/// One of the platform's own accounts (created by the migration).
pub async fn platform_account(
    conn: &mut PgConnection,
    asset: Asset,
    kind: AccountKind,
) -> Result<i64, LedgerError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM ledger_accounts WHERE owner_id IS NULL AND asset = $1 AND kind = $2 AND shard = 0",
    )
    .bind(asset.as_str())
    .bind(kind.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| {
        LedgerError::Invalid(format!(
            "no platform {} {} account",
            asset.as_str(),
            kind.as_str()
        ))
    })?)
}

/// One of the 16 money fee-income accounts, chosen by `seed` (e.g. from an order id), so
/// concurrent sales spread over them.
pub async fn fee_account(conn: &mut PgConnection, seed: u64) -> Result<i64, LedgerError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM ledger_accounts WHERE owner_id IS NULL AND asset = 'money' AND kind = 'platform_fees' AND shard = $1",
    )
    .bind((seed % FEE_SHARDS) as i16)
    .fetch_one(&mut *conn)
    .await?)
}

/// The next value of a number sequence (`order_number_seq`, …).
pub async fn next_in_sequence(conn: &mut PgConnection, sequence: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval($1::regclass)")
        .bind(sequence)
        .fetch_one(conn)
        .await
}

/// A user's balance (zero for an account not opened yet); for `Held`, every reserved account
/// of theirs together (their own and their listings').
pub async fn balance(
    conn: &mut PgConnection,
    owner: Uuid,
    asset: Asset,
    kind: AccountKind,
) -> Result<Decimal, LedgerError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(balance), 0) FROM ledger_accounts WHERE owner_id = $1 AND asset = $2 AND kind = $3",
    )
    .bind(owner)
    .bind(asset.as_str())
    .bind(kind.as_str())
    .fetch_one(&mut *conn)
    .await?)
}

/// The reserved credit account of one listing (its `scope`), created on first use.
pub async fn scoped_account(
    conn: &mut PgConnection,
    owner: Uuid,
    asset: Asset,
    scope: Uuid,
) -> Result<i64, LedgerError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO ledger_accounts (owner_id, asset, kind, scope) VALUES ($1, $2, 'held', $3)
         ON CONFLICT (owner_id, asset, kind, scope, shard) DO UPDATE SET scope = EXCLUDED.scope
         RETURNING id",
    )
    .bind(owner)
    .bind(asset.as_str())
    .bind(scope)
    .fetch_one(&mut *conn)
    .await?)
}

/// Writes a balanced transfer: checks it, locks its accounts in id order, refuses to take a
/// user (or the buffer pool, or fee income) below zero or to move retired credits, then writes
/// the transfer, its entries and the new balances, and moves the serials of any credits.
pub async fn transfer(conn: &mut PgConnection, t: Transfer<'_>) -> Result<Posted, LedgerError> {
    if let Some(key) = t.idempotency_key {
        if let Some(id) = keyed(conn, key).await? {
            return Ok(Posted::Replayed(id));
        }
    }
    let ids: Vec<i64> = t.legs.iter().map(|l| l.account).collect();
    let mut accounts = lock_accounts(conn, &ids).await?;
    let entries = check(&mut accounts, &t.legs)?;
    // Nothing is written when the idempotency key was taken a moment ago by a concurrent
    // request: that transfer is the answer.
    let Some(id) = write(conn, &[(&t, &entries)]).await?[0] else {
        let key = t.idempotency_key.expect("only a keyed transfer conflicts");
        let id = keyed(conn, key)
            .await?
            .ok_or_else(|| LedgerError::Invalid("a conflicting key without its transfer".into()))?;
        return Ok(Posted::Replayed(id));
    };

    // Credits carry serials. Issuance mints its own block (the source holds none).
    if entries.iter().any(|e| e.kind == "issuance_source") {
        return Ok(Posted::New(id));
    }
    if let Some(ranges) = t.exact_serials {
        let credits: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.asset == Asset::Credit)
            .collect();
        let ([from], [to]) = (
            &credits
                .iter()
                .filter(|e| e.amount < Decimal::ZERO)
                .collect::<Vec<_>>()[..],
            &credits
                .iter()
                .filter(|e| e.amount > Decimal::ZERO)
                .collect::<Vec<_>>()[..],
        ) else {
            return Err(LedgerError::Invalid(
                "exact serials move between one account and another".into(),
            ));
        };
        if Decimal::from(ranges.iter().map(SerialRange::len).sum::<i64>()) != -from.amount {
            return Err(LedgerError::Invalid(
                "the serials named do not add up to the quantity".into(),
            ));
        }
        for range in ranges {
            move_exact(conn, id, from.account, to.account, *range).await?;
        }
        return Ok(Posted::New(id));
    }
    move_serials(conn, &moves(id, &entries, t.retirement_id)?, t.serial_class).await?;
    Ok(Posted::New(id))
}

/// The transfer a key wrote, if any.
async fn keyed(conn: &mut PgConnection, key: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM ledger_transfers WHERE idempotency_key = $1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
}

/// Locks accounts in id order (see the module's note on locking); answers them by id.
async fn lock_accounts(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<BTreeMap<i64, AccountRow>, LedgerError> {
    accounts(conn, ids, true).await
}

/// Accounts by id, locked in id order or as they are now (`locked` false: a first look that a
/// later check under lock confirms).
async fn accounts(
    conn: &mut PgConnection,
    ids: &[i64],
    locked: bool,
) -> Result<BTreeMap<i64, AccountRow>, LedgerError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<AccountRow> = sqlx::query_as(if locked {
        "SELECT id, owner_id, asset, kind, balance FROM ledger_accounts WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE"
    } else {
        "SELECT id, owner_id, asset, kind, balance FROM ledger_accounts WHERE id = ANY($1)"
    })
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() != ids.len() {
        return Err(LedgerError::Invalid("unknown account".into()));
    }
    Ok(rows.into_iter().map(|a| (a.id, a)).collect())
}

/// One line of a checked transfer: an account's net amount and its balance after it.
#[derive(Debug, Clone)]
struct Entry {
    account: i64,
    asset: Asset,
    kind: String,
    amount: Decimal,
    after: Decimal,
}

/// Checks legs against their (locked) accounts: each asset sums to zero; no user (nor the
/// buffer pool, nor fee income) goes below zero; retired credits stay. Answers the net amount
/// per account in id order and applies it to `accounts`, so transfers checked one after
/// another see each other's balances.
fn check(
    accounts: &mut BTreeMap<i64, AccountRow>,
    legs: &[Leg],
) -> Result<Vec<Entry>, LedgerError> {
    // Net amount per account (a transfer may name an account twice).
    let mut net: BTreeMap<i64, Decimal> = BTreeMap::new();
    for leg in legs {
        if leg.amount.is_zero() {
            return Err(LedgerError::Invalid("a leg of zero".into()));
        }
        *net.entry(leg.account).or_default() += leg.amount;
    }
    net.retain(|_, a| !a.is_zero());
    if net.len() < 2 {
        return Err(LedgerError::Invalid("a transfer needs two accounts".into()));
    }
    let mut sums: BTreeMap<Asset, Decimal> = BTreeMap::new();
    for (id, amount) in &net {
        let a = accounts
            .get(id)
            .ok_or_else(|| LedgerError::Invalid("unknown account".into()))?;
        let asset = Asset::parse(&a.asset);
        if amount.normalize().scale() > asset.scale() {
            return Err(LedgerError::Invalid(format!(
                "{amount} has more than {} decimals for {}",
                asset.scale(),
                asset.as_str()
            )));
        }
        *sums.entry(asset).or_default() += amount;
        if *amount < Decimal::ZERO {
            if a.kind == "retired" {
                return Err(LedgerError::RetiredIsFinal);
            }
            let floored =
                a.owner_id.is_some() || a.kind == "buffer_pool" || a.kind == "platform_fees";
            if floored && a.balance + amount < Decimal::ZERO {
                return Err(LedgerError::Insufficient {
                    account: a.id,
                    balance: a.balance,
                    needed: -amount,
                });
            }
        }
    }
    if let Some((asset, sum)) = sums.iter().find(|(_, s)| !s.is_zero()) {
        return Err(LedgerError::Invalid(format!(
            "{} legs sum to {sum}, not 0",
            asset.as_str()
        )));
    }
    Ok(net
        .into_iter()
        .map(|(id, amount)| {
            let a = accounts.get_mut(&id).expect("checked above");
            a.balance += amount;
            Entry {
                account: id,
                asset: Asset::parse(&a.asset),
                kind: a.kind.clone(),
                amount,
                after: a.balance,
            }
        })
        .collect())
}

/// Each transfer numbered (`n`, from 1) with its id drawn, in order: the first CTE of the
/// statements that write transfers ($1–$6, as `transfer_columns` binds them).
macro_rules! numbered_transfers {
    () => {
        "n AS MATERIALIZED (
             SELECT nextval(pg_get_serial_sequence('ledger_transfers', 'id')) AS id, x.*
             FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[])
                  WITH ORDINALITY AS x(kind, hold_id, idempotency_key, reference, memo, actor_id, n))"
    };
}

/// The transfers of CTE `n` written (a taken idempotency key skips its transfer).
macro_rules! insert_numbered_transfers {
    () => {
        "INSERT INTO ledger_transfers (id, kind, hold_id, idempotency_key, reference, memo, actor_id)
         OVERRIDING SYSTEM VALUE
         SELECT id, kind, hold_id, idempotency_key, reference, coalesce(memo, ''), actor_id FROM n ORDER BY n
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
    };
}

/// The entries of CTE `e` written, and their accounts' balances moved by them.
macro_rules! insert_entries_and_balances {
    () => {
        "i AS (
             INSERT INTO ledger_entries (transfer_id, account_id, asset, amount, balance_after)
             SELECT * FROM e ORDER BY transfer_id, account_id),
         b AS (
             UPDATE ledger_accounts a SET balance = a.balance + s.amount
             FROM (SELECT account_id, sum(amount) AS amount FROM e GROUP BY account_id) s
             WHERE a.id = s.account_id)"
    };
}

/// A transfer's columns, for `numbered_transfers`.
type TransferColumns<'t> = (
    Vec<&'t str>,
    Vec<Option<Uuid>>,
    Vec<Option<&'t str>>,
    Vec<Option<&'t str>>,
    Vec<&'t str>,
    Vec<Option<Uuid>>,
);

/// Binds a statement's next parameters to the listed fields of a tuple of columns, in order.
macro_rules! bind_columns {
    ($statement:expr, $c:expr, $($field:tt)+) => {
        $statement $(.bind(&$c.$field))+
    };
}

/// Binds a statement's next six parameters to `TransferColumns`.
macro_rules! bind_transfers {
    ($statement:expr, $c:expr) => {
        bind_columns!($statement, $c, 0 1 2 3 4 5)
    };
}

fn transfer_columns<'t>(transfers: impl Iterator<Item = &'t Transfer<'t>>) -> TransferColumns<'t> {
    let mut c: TransferColumns<'t> = Default::default();
    for t in transfers {
        c.0.push(t.kind);
        c.1.push(t.hold_id);
        c.2.push(t.idempotency_key);
        c.3.push(t.reference.as_deref());
        c.4.push(t.memo.as_str());
        c.5.push(t.actor);
    }
    c
}

/// Entries' columns: the `n`th transfer (from 1) or a transfer's id, account, asset, amount,
/// balance after.
type EntryColumns<'e> = (Vec<i64>, Vec<i64>, Vec<&'e str>, Vec<Decimal>, Vec<Decimal>);

/// Binds a statement's next five parameters to `EntryColumns`.
macro_rules! bind_entries {
    ($statement:expr, $c:expr) => {
        bind_columns!($statement, $c, 0 1 2 3 4)
    };
}

fn entry_columns<'e>(entries: impl Iterator<Item = (i64, &'e [Entry])>) -> EntryColumns<'e> {
    let mut c: EntryColumns<'e> = Default::default();
    for (of, entries) in entries {
        for e in entries {
            c.0.push(of);
            c.1.push(e.account);
            c.2.push(e.asset.as_str());
            c.3.push(e.amount);
            c.4.push(e.after);
        }
    }
    c
}

/// Writes checked transfers, their entries and the accounts' new balances in one statement;
/// answers each transfer's id, in order. A transfer whose idempotency key is taken is not
/// written (None), nor are its entries or balances.
async fn write(
    conn: &mut PgConnection,
    transfers: &[(&Transfer<'_>, &[Entry])],
) -> Result<Vec<Option<i64>>, LedgerError> {
    let t = transfer_columns(transfers.iter().map(|(t, _)| *t));
    let e = entry_columns(
        transfers
            .iter()
            .enumerate()
            .map(|(n, (_, entries))| (n as i64 + 1, *entries)),
    );
    let statement = sqlx::query_as(concat!(
        "WITH ",
        numbered_transfers!(),
        ", t AS (",
        insert_numbered_transfers!(),
        "),
         e AS MATERIALIZED (
             SELECT t.id AS transfer_id, x.account_id, x.asset, x.amount, x.balance_after
             FROM UNNEST($7::bigint[], $8::bigint[], $9::text[], $10::numeric[], $11::numeric[])
                  AS x(n, account_id, asset, amount, balance_after)
             JOIN n ON n.n = x.n JOIN t ON t.id = n.id), ",
        insert_entries_and_balances!(),
        " SELECT n.id, t.id IS NOT NULL FROM n LEFT JOIN t ON t.id = n.id ORDER BY n.n"
    ));
    let rows: Vec<(i64, bool)> = bind_entries!(bind_transfers!(statement, t), e)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, written)| written.then_some(id))
        .collect())
}

/// Writes unkeyed transfers without their entries (`write_entries` adds them); answers each
/// one's id, in order.
async fn write_transfers(
    conn: &mut PgConnection,
    transfers: &[Transfer<'_>],
) -> Result<Vec<i64>, LedgerError> {
    let t = transfer_columns(transfers.iter());
    let statement = sqlx::query_scalar(concat!(
        "WITH ",
        numbered_transfers!(),
        ", t AS (",
        insert_numbered_transfers!(),
        ") SELECT n.id FROM n ORDER BY n.n"
    ));
    let ids: Vec<i64> = bind_transfers!(statement, t).fetch_all(&mut *conn).await?;
    Ok(ids)
}

/// Writes checked entries of transfers already written, and their accounts' new balances, in
/// one statement.
async fn write_entries(
    conn: &mut PgConnection,
    entries: &[(i64, Vec<Entry>)],
) -> Result<(), LedgerError> {
    let e = entry_columns(entries.iter().map(|(id, e)| (*id, e.as_slice())));
    let statement = sqlx::query(concat!(
        "WITH e AS MATERIALIZED (
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::numeric[], $5::numeric[])
                  AS x(transfer_id, account_id, asset, amount, balance_after)), ",
        insert_entries_and_balances!(),
        " SELECT count(*) FROM e"
    ));
    bind_entries!(statement, e).execute(&mut *conn).await?;
    Ok(())
}

/// Credits leaving one account for another within a transfer: their serials follow.
#[derive(Debug, Clone, Copy)]
struct Move {
    transfer: i64,
    from: i64,
    to: i64,
    kg: i64,
    /// Credits moving into a retired account are stamped with their retirement.
    retirement: Option<Uuid>,
}

/// The serial moves of a transfer's credit entries: the debited accounts paired with the
/// credited ones in id order.
fn moves(
    transfer: i64,
    entries: &[Entry],
    retirement: Option<Uuid>,
) -> Result<Vec<Move>, LedgerError> {
    let mut debits: Vec<(i64, i64)> = Vec::new();
    let mut credits: Vec<(i64, i64, bool)> = Vec::new();
    for e in entries.iter().filter(|e| e.asset == Asset::Credit) {
        let kg = whole_kg(e.amount)?;
        if kg < 0 {
            debits.push((e.account, -kg));
        } else {
            credits.push((e.account, kg, e.kind == "retired"));
        }
    }
    let mut moves = Vec::new();
    let (mut d, mut c) = (0, 0);
    while d < debits.len() && c < credits.len() {
        let kg = debits[d].1.min(credits[c].1);
        moves.push(Move {
            transfer,
            from: debits[d].0,
            to: credits[c].0,
            kg,
            retirement: retirement.filter(|_| credits[c].2),
        });
        debits[d].1 -= kg;
        credits[c].1 -= kg;
        if debits[d].1 == 0 {
            d += 1;
        }
        if credits[c].1 == 0 {
            c += 1;
        }
    }
    Ok(moves)
}

fn whole_kg(amount: Decimal) -> Result<i64, LedgerError> {
    use rust_decimal::prelude::ToPrimitive;
    if amount.fract() != Decimal::ZERO {
        return Err(LedgerError::Invalid(
            "credits move in whole kilograms".into(),
        ));
    }
    amount
        .to_i64()
        .ok_or_else(|| LedgerError::Invalid("quantity out of range".into()))
}

/// A serial block as moves leave it.
struct Block {
    id: i64,
    account: i64,
    issuance: Uuid,
    range: SerialRange,
    /// Where the whole (rest of the) block went, if it did.
    gone: Option<(i64, Option<Uuid>)>,
    touched: bool,
}

/// Carries out moves in order: each takes the lowest serials its `from` account still holds
/// (only of `class`, if given), splitting at most one block, and records the movement. Three
/// statements whatever the number of moves: the blocks read under lock, their final state
/// written (a block wholly taken goes to its last taker; the others shrink), then the new
/// blocks and every movement — after the shrinking, as blocks may never overlap, not even
/// for a moment.
async fn move_serials(
    conn: &mut PgConnection,
    moves: &[Move],
    class: Option<SerialClass<'_>>,
) -> Result<(), LedgerError> {
    if moves.is_empty() {
        return Ok(());
    }
    let mut from: Vec<i64> = moves.iter().map(|m| m.from).collect();
    from.sort_unstable();
    from.dedup();
    type Row = (i64, i64, Uuid, i64, i64);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT b.id, b.account_id, b.issuance_id, lower(b.serials), upper(b.serials) FROM serial_blocks b
         WHERE b.account_id = ANY($1)
           AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM credit_issuances i
                WHERE i.id = b.issuance_id AND i.region = $2 AND i.vintage = $3))
         ORDER BY b.id FOR UPDATE OF b",
    )
    .bind(&from)
    .bind(class.map(|c| c.region))
    .bind(class.map(|c| c.vintage))
    .fetch_all(&mut *conn)
    .await?;
    let mut blocks: Vec<Block> = rows
        .into_iter()
        .map(|(id, account, issuance, start, end)| Block {
            id,
            account,
            issuance,
            range: SerialRange::new(start, end),
            gone: None,
            touched: false,
        })
        .collect();
    // New blocks: (issuance, range, account, retirement); movements: (transfer, issuance,
    // range, from, to).
    let mut new_blocks: Vec<(Uuid, SerialRange, i64, Option<Uuid>)> = Vec::new();
    let mut movements: Vec<(i64, Uuid, SerialRange, i64, i64)> = Vec::new();
    for m in moves {
        let held: Vec<(usize, SerialRange)> = blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.account == m.from && b.gone.is_none())
            .map(|(i, b)| (i, b.range))
            .collect();
        let takes = serial::take(&held, m.kg).ok_or_else(|| {
            LedgerError::Invalid(format!(
                "account {} has fewer than {} kg of serials for its balance",
                m.from, m.kg
            ))
        })?;
        for take in takes {
            let b = &mut blocks[take.block];
            b.touched = true;
            match take.rest {
                None => b.gone = Some((m.to, m.retirement)),
                Some(rest) => {
                    b.range = rest;
                    new_blocks.push((b.issuance, take.moved, m.to, m.retirement));
                }
            }
            movements.push((m.transfer, b.issuance, take.moved, m.from, m.to));
        }
    }
    let touched: Vec<&Block> = blocks.iter().filter(|b| b.touched).collect();
    // Reached by key (`b.id = ANY($1)`), as the holds in `post_unbooked`.
    sqlx::query(
        "UPDATE serial_blocks b SET serials = int8range(n.lower, n.upper), account_id = n.account_id,
                retirement_id = n.retirement_id
         FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::uuid[])
              AS n(id, lower, upper, account_id, retirement_id)
         WHERE b.id = n.id AND b.id = ANY($1)",
    )
    .bind(touched.iter().map(|b| b.id).collect::<Vec<_>>())
    .bind(touched.iter().map(|b| b.range.start).collect::<Vec<_>>())
    .bind(touched.iter().map(|b| b.range.end).collect::<Vec<_>>())
    .bind(touched.iter().map(|b| b.gone.map_or(b.account, |g| g.0)).collect::<Vec<_>>())
    .bind(touched.iter().map(|b| b.gone.and_then(|g| g.1)).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH b AS (
             INSERT INTO serial_blocks (issuance_id, serials, account_id, retirement_id)
             SELECT n.issuance_id, int8range(n.lower, n.upper), n.account_id, n.retirement_id
             FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::uuid[])
                  AS n(issuance_id, lower, upper, account_id, retirement_id))
         INSERT INTO serial_movements (transfer_id, issuance_id, serials, from_account_id, to_account_id)
         SELECT m.transfer_id, m.issuance_id, int8range(m.lower, m.upper), m.from_id, m.to_id
         FROM UNNEST($6::bigint[], $7::uuid[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
              AS m(transfer_id, issuance_id, lower, upper, from_id, to_id)",
    )
    .bind(new_blocks.iter().map(|b| b.0).collect::<Vec<_>>())
    .bind(new_blocks.iter().map(|b| b.1.start).collect::<Vec<_>>())
    .bind(new_blocks.iter().map(|b| b.1.end).collect::<Vec<_>>())
    .bind(new_blocks.iter().map(|b| b.2).collect::<Vec<_>>())
    .bind(new_blocks.iter().map(|b| b.3).collect::<Vec<_>>())
    .bind(movements.iter().map(|m| m.0).collect::<Vec<_>>())
    .bind(movements.iter().map(|m| m.1).collect::<Vec<_>>())
    .bind(movements.iter().map(|m| m.2.start).collect::<Vec<_>>())
    .bind(movements.iter().map(|m| m.2.end).collect::<Vec<_>>())
    .bind(movements.iter().map(|m| m.3).collect::<Vec<_>>())
    .bind(movements.iter().map(|m| m.4).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves exactly the serials of `range` from one account to another (every one of them must
/// be in `from`), splitting blocks at the range's ends, and records the movement.
async fn move_exact(
    conn: &mut PgConnection,
    transfer_id: i64,
    from: i64,
    to: i64,
    range: SerialRange,
) -> Result<(), LedgerError> {
    type Block = (i64, Uuid, i64, i64);
    let blocks: Vec<Block> = sqlx::query_as(
        "SELECT id, issuance_id, lower(serials), upper(serials) FROM serial_blocks
         WHERE account_id = $1 AND serials && int8range($2, $3)
         ORDER BY lower(serials) FOR UPDATE",
    )
    .bind(from)
    .bind(range.start)
    .bind(range.end)
    .fetch_all(&mut *conn)
    .await?;
    let mut covered = 0;
    for (block, issuance, start, end) in blocks {
        let moved = SerialRange::new(start.max(range.start), end.min(range.end));
        covered += moved.len();
        // What stays behind: before and after the moved part. The old block shrinks first
        // (blocks may never overlap, not even for a moment).
        let rest: Vec<SerialRange> = [
            SerialRange {
                start,
                end: moved.start,
            },
            SerialRange {
                start: moved.end,
                end,
            },
        ]
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
        match rest.as_slice() {
            [] => {
                sqlx::query("UPDATE serial_blocks SET account_id = $2 WHERE id = $1")
                    .bind(block)
                    .bind(to)
                    .execute(&mut *conn)
                    .await?;
            }
            [keep, more @ ..] => {
                sqlx::query("UPDATE serial_blocks SET serials = int8range($2, $3) WHERE id = $1")
                    .bind(block)
                    .bind(keep.start)
                    .bind(keep.end)
                    .execute(&mut *conn)
                    .await?;
                for piece in more.iter().map(|r| (r, from)).chain([(&moved, to)]) {
                    sqlx::query(
                        "INSERT INTO serial_blocks (issuance_id, serials, account_id) VALUES ($1, int8range($2, $3), $4)",
                    )
                    .bind(issuance)
                    .bind(piece.0.start)
                    .bind(piece.0.end)
                    .bind(piece.1)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        sqlx::query(
            "INSERT INTO serial_movements (transfer_id, issuance_id, serials, from_account_id, to_account_id)
             VALUES ($1, $2, int8range($3, $4), $5, $6)",
        )
        .bind(transfer_id)
        .bind(issuance)
        .bind(moved.start)
        .bind(moved.end)
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    }
    if covered != range.len() {
        return Err(LedgerError::Invalid(format!(
            "account {from} does not hold every serial of {}–{}",
            range.start,
            range.end - 1
        )));
    }
    Ok(())
}

/// Allocates `quantity` consecutive serials from the platform-wide counter; returns the range.
pub async fn allocate_serials(
    conn: &mut PgConnection,
    quantity: i64,
) -> Result<SerialRange, LedgerError> {
    let start: i64 = sqlx::query_scalar(
        "INSERT INTO number_sequences (kind, next) VALUES ('serial', 1 + $1)
         ON CONFLICT (kind) DO UPDATE SET next = number_sequences.next + $1
         RETURNING next - $1",
    )
    .bind(quantity)
    .fetch_one(&mut *conn)
    .await?;
    Ok(SerialRange::new(start, start + quantity))
}

/// The next number of a kind of public identifier (1, 2, 3, … per kind).
pub async fn next_number(conn: &mut PgConnection, kind: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO number_sequences (kind, next) VALUES ($1, 2)
         ON CONFLICT (kind) DO UPDATE SET next = number_sequences.next + 1
         RETURNING next - 1",
    )
    .bind(kind)
    .fetch_one(conn)
    .await
}

/// A new block of serials in `account` (after the issuance's transfer credited it).
pub async fn mint_block(
    conn: &mut PgConnection,
    transfer_id: i64,
    issuance_id: Uuid,
    serials: SerialRange,
    account: i64,
) -> Result<(), LedgerError> {
    sqlx::query(
        "INSERT INTO serial_blocks (issuance_id, serials, account_id) VALUES ($1, int8range($2, $3), $4)",
    )
    .bind(issuance_id)
    .bind(serials.start)
    .bind(serials.end)
    .bind(account)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO serial_movements (transfer_id, issuance_id, serials, from_account_id, to_account_id)
         VALUES ($1, $2, int8range($3, $4), NULL, $5)",
    )
    .bind(transfer_id)
    .bind(issuance_id)
    .bind(serials.start)
    .bind(serials.end)
    .bind(account)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Reserves `amount` of the owner's available `asset` in their held account. Nothing is
/// written when they have less.
pub async fn hold(
    conn: &mut PgConnection,
    owner: Uuid,
    asset: Asset,
    amount: Decimal,
    purpose: &str,
    actor: Option<Uuid>,
) -> Result<Uuid, LedgerError> {
    let held = user_account(conn, owner, asset, AccountKind::Held).await?;
    hold_into(conn, owner, asset, amount, held, None, purpose, actor).await
}

/// Reserves `kg` of the owner's available credits of one region and vintage in the reserved
/// account of `scope` (a listing); answers the hold and that account.
pub async fn hold_credits(
    conn: &mut PgConnection,
    owner: Uuid,
    kg: i64,
    scope: Uuid,
    class: SerialClass<'_>,
    purpose: &str,
    actor: Option<Uuid>,
) -> Result<(Uuid, i64), LedgerError> {
    let held = scoped_account(conn, owner, Asset::Credit, scope).await?;
    let hold = hold_into(
        conn,
        owner,
        Asset::Credit,
        Decimal::from(kg),
        held,
        Some(class),
        purpose,
        actor,
    )
    .await?;
    Ok((hold, held))
}

#[allow(clippy::too_many_arguments)]
async fn hold_into(
    conn: &mut PgConnection,
    owner: Uuid,
    asset: Asset,
    amount: Decimal,
    held: i64,
    class: Option<SerialClass<'_>>,
    purpose: &str,
    actor: Option<Uuid>,
) -> Result<Uuid, LedgerError> {
    if amount <= Decimal::ZERO {
        return Err(LedgerError::Invalid("a hold must be positive".into()));
    }
    let available = user_account(conn, owner, asset, AccountKind::Available).await?;
    let mut balance: Decimal =
        sqlx::query_scalar("SELECT balance FROM ledger_accounts WHERE id = $1 FOR NO KEY UPDATE")
            .bind(available)
            .fetch_one(&mut *conn)
            .await?;
    if let Some(class) = class {
        // Only credits of that class count (the account row is locked, so this stays true).
        balance = sqlx::query_scalar(
            "SELECT coalesce(sum(upper(b.serials) - lower(b.serials)), 0)::numeric FROM serial_blocks b
             JOIN credit_issuances i ON i.id = b.issuance_id
             WHERE b.account_id = $1 AND i.region = $2 AND i.vintage = $3",
        )
        .bind(available)
        .bind(class.region)
        .bind(class.vintage)
        .fetch_one(&mut *conn)
        .await?;
    }
    if balance < amount {
        return Err(LedgerError::Insufficient {
            account: available,
            balance,
            needed: amount,
        });
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO ledger_holds (id, asset, available_id, held_id, amount, remaining, status, purpose)
         VALUES ($1, $2, $3, $4, $5, $5, 'pending', $6)",
    )
    .bind(id)
    .bind(asset.as_str())
    .bind(available)
    .bind(held)
    .bind(amount)
    .bind(purpose)
    .execute(&mut *conn)
    .await?;
    transfer(
        conn,
        Transfer {
            kind: "hold",
            legs: vec![Leg::new(available, -amount), Leg::new(held, amount)],
            hold_id: Some(id),
            memo: purpose.to_owned(),
            actor,
            serial_class: class,
            ..Transfer::default()
        },
    )
    .await?;
    Ok(id)
}

/// Returns `amount` of a pending hold to the available account it came from; the rest stays
/// reserved. The hold is `voided` once nothing remains.
pub async fn release(
    conn: &mut PgConnection,
    hold_id: Uuid,
    amount: Decimal,
    kind: &str,
    actor: Option<Uuid>,
) -> Result<i64, LedgerError> {
    if amount <= Decimal::ZERO {
        return Err(LedgerError::Invalid("a release must be positive".into()));
    }
    let row: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE ledger_holds SET remaining = remaining - $2,
                status = CASE WHEN remaining = $2 THEN 'voided' ELSE 'pending' END,
                closed_at = CASE WHEN remaining = $2 THEN now() END
         WHERE id = $1 AND status = 'pending' AND remaining >= $2
         RETURNING held_id, available_id",
    )
    .bind(hold_id)
    .bind(amount)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((held, available)) = row else {
        return Err(hold_refusal(conn, hold_id).await?);
    };
    Ok(transfer(
        conn,
        Transfer {
            kind,
            legs: vec![Leg::new(held, -amount), Leg::new(available, amount)],
            hold_id: Some(hold_id),
            actor,
            ..Transfer::default()
        },
    )
    .await?
    .id())
}

/// A part of a pending hold to post to its destinations (see `post_all`).
pub struct HoldPost<'a> {
    pub hold_id: Uuid,
    /// How much of the hold; the legs of `to` add up to it.
    pub amount: Decimal,
    pub to: Vec<Leg>,
    /// What the transfer is (its legs and hold are filled in).
    pub transfer: Transfer<'a>,
}

/// Posts `amount` of a pending hold to `to` (legs that add up to `amount`); the rest of the
/// hold stays pending. The hold is `posted` once nothing remains.
pub async fn post(
    conn: &mut PgConnection,
    hold_id: Uuid,
    amount: Decimal,
    to: Vec<Leg>,
    t: Transfer<'_>,
) -> Result<i64, LedgerError> {
    let post = HoldPost {
        hold_id,
        amount,
        to,
        transfer: t,
    };
    let ids = post_all(conn, vec![post]).await.map_err(|(_, e)| e)?;
    Ok(ids[0])
}

/// Posts parts of pending holds, in order, each as its own transfer (as `post` does one), in
/// a fixed number of statements whatever their number: `post_unbooked`, then `Booking::book`.
/// Answers each transfer's id. A refusal says which post it concerns (0 when it concerns them
/// all); the caller's transaction must then not commit.
pub async fn post_all(
    conn: &mut PgConnection,
    posts: Vec<HoldPost<'_>>,
) -> Result<Vec<i64>, (usize, LedgerError)> {
    let (ids, booking) = post_unbooked(conn, posts).await?;
    booking.book(conn).await?;
    Ok(ids)
}

/// What `post_unbooked` leaves to write: each transfer's id and legs, in order.
#[must_use = "the transfers have no entries until `Booking::book` writes them, before the commit"]
pub struct Booking {
    transfers: Vec<(i64, Vec<Leg>)>,
}

/// `post_all` but its last step, for a caller with more to write that refers to the
/// transfers: the holds drawn down, every transfer checked against its accounts as they are
/// now (not locked), written without its entries, and its serials moved. `Booking::book`
/// then locks the accounts and writes the entries and balances; the caller books last,
/// right before it commits, so that the accounts — a seller's wallet is shared by all their
/// sales — stay locked for two statements and the commit. Posts carry no idempotency key, no
/// serial class and no exact serials.
pub async fn post_unbooked(
    conn: &mut PgConnection,
    posts: Vec<HoldPost<'_>>,
) -> Result<(Vec<i64>, Booking), (usize, LedgerError)> {
    let all = |e: LedgerError| (0, e);
    for (i, p) in posts.iter().enumerate() {
        if p.amount <= Decimal::ZERO {
            return Err((i, LedgerError::Invalid("a post must be positive".into())));
        }
        let t = &p.transfer;
        if t.idempotency_key.is_some() || t.serial_class.is_some() || t.exact_serials.is_some() {
            return Err((
                i,
                LedgerError::Invalid("a hold's post moves what the hold holds, unkeyed".into()),
            ));
        }
    }
    // What each hold gives in all.
    let mut per_hold: BTreeMap<Uuid, Decimal> = BTreeMap::new();
    for p in &posts {
        *per_hold.entry(p.hold_id).or_default() += p.amount;
    }
    // `h.id = ANY($1)` beside the join lets the planner reach the holds by key; joined to the
    // array alone, a generic plan hash-joined a scan of every hold.
    let held: BTreeMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i64)>(
        "UPDATE ledger_holds h SET remaining = h.remaining - n.amount,
                status = CASE WHEN h.remaining = n.amount THEN 'posted' ELSE 'pending' END,
                closed_at = CASE WHEN h.remaining = n.amount THEN now() END
         FROM UNNEST($1::uuid[], $2::numeric[]) AS n(id, amount)
         WHERE h.id = n.id AND h.id = ANY($1) AND h.status = 'pending' AND h.remaining >= n.amount
         RETURNING h.id, h.held_id",
    )
    .bind(per_hold.keys().copied().collect::<Vec<_>>())
    .bind(per_hold.values().copied().collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| all(e.into()))?
    .into_iter()
    .collect();
    if let Some(i) = posts.iter().position(|p| !held.contains_key(&p.hold_id)) {
        return Err((
            i,
            hold_refusal(conn, posts[i].hold_id)
                .await
                .unwrap_or_else(|e| e),
        ));
    }

    let mut ids: Vec<i64> = held.values().copied().collect();
    ids.extend(posts.iter().flat_map(|p| p.to.iter().map(|l| l.account)));
    let mut now = accounts(conn, &ids, false).await.map_err(all)?;
    let mut transfers = Vec::with_capacity(posts.len());
    let mut entries = Vec::with_capacity(posts.len());
    for (i, p) in posts.into_iter().enumerate() {
        let mut legs = vec![Leg::new(held[&p.hold_id], -p.amount)];
        legs.extend(p.to);
        entries.push(check(&mut now, &legs).map_err(|e| (i, e))?);
        transfers.push(Transfer {
            kind: if p.transfer.kind.is_empty() {
                "post"
            } else {
                p.transfer.kind
            },
            legs,
            hold_id: Some(p.hold_id),
            ..p.transfer
        });
    }
    let ids = write_transfers(conn, &transfers).await.map_err(all)?;
    let mut serials = Vec::new();
    for ((t, e), id) in transfers.iter().zip(&entries).zip(&ids) {
        serials.extend(moves(*id, e, t.retirement_id).map_err(all)?);
    }
    move_serials(conn, &serials, None).await.map_err(all)?;
    let booking = Booking {
        transfers: ids
            .iter()
            .copied()
            .zip(transfers.into_iter().map(|t| t.legs))
            .collect(),
    };
    Ok((ids, booking))
}

impl Booking {
    /// Locks the accounts in id order, checks each transfer against the balances the ones
    /// before it left (they may have moved since `post_unbooked` looked), and writes every
    /// entry and the new balances in one statement. A refusal says which post it concerns, as
    /// `post_all`'s.
    pub async fn book(self, conn: &mut PgConnection) -> Result<(), (usize, LedgerError)> {
        let ids: Vec<i64> = self
            .transfers
            .iter()
            .flat_map(|(_, legs)| legs.iter().map(|l| l.account))
            .collect();
        let mut accounts = lock_accounts(conn, &ids).await.map_err(|e| (0, e))?;
        let mut entries = Vec::with_capacity(self.transfers.len());
        for (i, (id, legs)) in self.transfers.iter().enumerate() {
            entries.push((*id, check(&mut accounts, legs).map_err(|e| (i, e))?));
        }
        write_entries(conn, &entries).await.map_err(|e| (0, e))
    }
}

/// Returns what is left of a pending hold to the available account; answers how much.
pub async fn void(
    conn: &mut PgConnection,
    hold_id: Uuid,
    actor: Option<Uuid>,
) -> Result<Decimal, LedgerError> {
    let row: Option<(Decimal, i64, i64)> = sqlx::query_as(
        "WITH h AS (SELECT id, remaining FROM ledger_holds WHERE id = $1 AND status = 'pending' FOR UPDATE)
         UPDATE ledger_holds l SET remaining = 0, status = 'voided', closed_at = now()
         FROM h WHERE l.id = h.id
         RETURNING h.remaining, l.held_id, l.available_id",
    )
    .bind(hold_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((remaining, held, available)) = row else {
        return Err(hold_refusal(conn, hold_id).await?);
    };
    transfer(
        conn,
        Transfer {
            kind: "void",
            legs: vec![Leg::new(held, -remaining), Leg::new(available, remaining)],
            hold_id: Some(hold_id),
            actor,
            ..Transfer::default()
        },
    )
    .await?;
    Ok(remaining)
}

/// Voids `release` (a pending hold, if any: what is left of it goes back to where it came
/// from) and holds `amount` of `owner`'s available money instead, in two statements: the hold
/// and every account involved locked (accounts in id order), then both transfers written at
/// once. The same as `void` then `hold`, for the hot path where one bidder's hold replaces
/// another's under an auction's lock. Nothing is written when the owner cannot cover `amount`
/// (with the released money, when it was theirs).
pub async fn rehold(
    conn: &mut PgConnection,
    release: Option<Uuid>,
    owner: Uuid,
    amount: Decimal,
    purpose: &str,
    actor: Option<Uuid>,
) -> Result<Uuid, LedgerError> {
    if amount <= Decimal::ZERO {
        return Err(LedgerError::Invalid("a hold must be positive".into()));
    }
    if amount.normalize().scale() > Asset::Money.scale() {
        return Err(LedgerError::Invalid(format!(
            "{amount} has more than {} decimals for money",
            Asset::Money.scale()
        )));
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        owner_id: Option<Uuid>,
        kind: String,
        balance: Decimal,
        old_remaining: Option<Decimal>,
        old_held: Option<i64>,
        old_available: Option<i64>,
    }
    let lock = || {
        sqlx::query_as::<_, Row>(
            "WITH old AS (
                 SELECT id, remaining, held_id, available_id FROM ledger_holds
                 WHERE id = $1 AND status = 'pending' AND asset = 'money' FOR UPDATE),
             ids AS (
                 SELECT held_id AS id FROM old UNION SELECT available_id FROM old
                 UNION SELECT id FROM ledger_accounts
                 WHERE owner_id = $2 AND asset = 'money' AND kind IN ('available', 'held') AND scope IS NULL)
             SELECT a.id, a.owner_id, a.kind, a.balance, (SELECT remaining FROM old) AS old_remaining,
                    (SELECT held_id FROM old) AS old_held, (SELECT available_id FROM old) AS old_available
             FROM ledger_accounts a WHERE a.id IN (SELECT id FROM ids) ORDER BY a.id FOR NO KEY UPDATE OF a",
        )
        .bind(release)
        .bind(owner)
    };
    let mut rows = lock().fetch_all(&mut *conn).await?;
    let mine = |rows: &[Row], kind: &str| {
        rows.iter()
            .find(|r| r.owner_id == Some(owner) && r.kind == kind)
            .map(|r| r.id)
    };
    if mine(&rows, "available").is_none() || mine(&rows, "held").is_none() {
        // First hold of this owner: open their accounts, then lock again.
        user_account(conn, owner, Asset::Money, AccountKind::Available).await?;
        user_account(conn, owner, Asset::Money, AccountKind::Held).await?;
        rows = lock().fetch_all(&mut *conn).await?;
    }
    let (Some(available), Some(held)) = (mine(&rows, "available"), mine(&rows, "held")) else {
        return Err(LedgerError::Invalid(
            "the owner's money accounts are missing".into(),
        ));
    };
    let old = match release {
        None => None,
        Some(hold_id) => match rows
            .first()
            .and_then(|r| Some((r.old_remaining?, r.old_held?, r.old_available?)))
        {
            Some(old) => Some((hold_id, old)),
            None => return Err(hold_refusal(conn, hold_id).await?),
        },
    };
    let mut balance: BTreeMap<i64, Decimal> = rows.iter().map(|r| (r.id, r.balance)).collect();
    // Entries in the order they happen, each with the balance it leaves.
    let (mut holds, mut accounts, mut amounts, mut afters) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut leg = |hold: Uuid, account: i64, amount: Decimal| -> Result<(), LedgerError> {
        let now = balance
            .get_mut(&account)
            .ok_or_else(|| LedgerError::Invalid("unknown account".into()))?;
        if *now + amount < Decimal::ZERO {
            return Err(LedgerError::Insufficient {
                account,
                balance: *now,
                needed: -amount,
            });
        }
        *now += amount;
        holds.push(hold);
        accounts.push(account);
        amounts.push(amount);
        afters.push(*now);
        Ok(())
    };
    if let Some((hold_id, (remaining, from, to))) = old {
        leg(hold_id, from, -remaining)?;
        leg(hold_id, to, remaining)?;
    }
    let id = Uuid::new_v4();
    leg(id, available, -amount)?;
    leg(id, held, amount)?;
    let mut net: BTreeMap<i64, Decimal> = BTreeMap::new();
    for (account, amount) in accounts.iter().zip(&amounts) {
        *net.entry(*account).or_default() += *amount;
    }
    net.retain(|_, a| !a.is_zero());
    let (net_ids, net_amounts): (Vec<i64>, Vec<Decimal>) = net.into_iter().unzip();
    let transfers: Vec<(&str, Uuid, &str)> = old
        .iter()
        .map(|(hold_id, _)| ("void", *hold_id, ""))
        .chain([("hold", id, purpose)])
        .collect();
    sqlx::query(
        "WITH v AS (
             UPDATE ledger_holds SET remaining = 0, status = 'voided', closed_at = now()
             WHERE id = $1 AND status = 'pending'),
         h AS (
             INSERT INTO ledger_holds (id, asset, available_id, held_id, amount, remaining, status, purpose)
             VALUES ($2, 'money', $3, $4, $5, $5, 'pending', $6)),
         t AS (
             INSERT INTO ledger_transfers (kind, hold_id, memo, actor_id)
             SELECT n.kind, n.hold, n.memo, $7 FROM UNNEST($8::text[], $9::uuid[], $10::text[]) WITH ORDINALITY n(kind, hold, memo, o)
             ORDER BY n.o
             RETURNING id, hold_id),
         e AS (
             INSERT INTO ledger_entries (transfer_id, account_id, asset, amount, balance_after)
             SELECT t.id, n.account, 'money', n.amount, n.after
             FROM UNNEST($11::uuid[], $12::bigint[], $13::numeric[], $14::numeric[]) WITH ORDINALITY n(hold, account, amount, after, o)
             JOIN t ON t.hold_id = n.hold ORDER BY n.o)
         UPDATE ledger_accounts a SET balance = a.balance + n.amount
         FROM UNNEST($15::bigint[], $16::numeric[]) AS n(id, amount) WHERE a.id = n.id",
    )
    .bind(old.map(|o| o.0))
    .bind(id)
    .bind(available)
    .bind(held)
    .bind(amount)
    .bind(purpose)
    .bind(actor)
    .bind(transfers.iter().map(|t| t.0).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| t.1).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| t.2).collect::<Vec<_>>())
    .bind(&holds)
    .bind(&accounts)
    .bind(&amounts)
    .bind(&afters)
    .bind(&net_ids)
    .bind(&net_amounts)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

async fn hold_refusal(conn: &mut PgConnection, hold_id: Uuid) -> Result<LedgerError, LedgerError> {
    let row: Option<(String, Decimal)> =
        sqlx::query_as("SELECT status, remaining FROM ledger_holds WHERE id = $1")
            .bind(hold_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        None => LedgerError::NoSuchHold,
        Some((status, _)) if status != "pending" => LedgerError::HoldClosed,
        Some((_, remaining)) => LedgerError::HoldExceeded { remaining },
    })
}

/// The result of `reconcile`: each check that failed, in words.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciliation {
    pub problems: Vec<String>,
    /// Per asset: Σ of all entries (must be 0) and how many entries there are.
    pub sums: Vec<(String, Decimal, i64)>,
    pub accounts: i64,
}

impl Reconciliation {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Proves the ledger: per asset the entries sum to zero; every cached balance equals the sum
/// of its entries; no user balance is negative; every held account equals its pending holds;
/// every credit account holds exactly as many serials as kilograms; the issuance source owes
/// exactly what was issued.
pub async fn reconcile(conn: &mut PgConnection) -> Result<Reconciliation, sqlx::Error> {
    let mut r = Reconciliation::default();
    r.sums = sqlx::query_as(
        "SELECT a.asset, coalesce(sum(e.amount), 0), count(e.id)
         FROM (VALUES ('money'), ('credit')) a(asset) LEFT JOIN ledger_entries e ON e.asset = a.asset
         GROUP BY a.asset ORDER BY a.asset",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (asset, sum, _) in &r.sums {
        if !sum.is_zero() {
            r.problems
                .push(format!("{asset} entries sum to {sum}, not 0"));
        }
    }
    r.accounts = sqlx::query_scalar("SELECT count(*) FROM ledger_accounts")
        .fetch_one(&mut *conn)
        .await?;
    let drift: Vec<(i64, Decimal, Decimal)> = sqlx::query_as(
        "SELECT a.id, a.balance, coalesce(e.total, 0) FROM ledger_accounts a
         LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) e ON e.account_id = a.id
         WHERE a.balance <> coalesce(e.total, 0)",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, cached, total) in drift {
        r.problems.push(format!(
            "account {id}: balance {cached} but its entries add up to {total}"
        ));
    }
    let negative: Vec<(i64, Decimal)> = sqlx::query_as(
        "SELECT id, balance FROM ledger_accounts WHERE owner_id IS NOT NULL AND balance < 0",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, balance) in negative {
        r.problems
            .push(format!("user account {id} is negative: {balance}"));
    }
    let holds: Vec<(i64, Decimal, Decimal)> = sqlx::query_as(
        "SELECT a.id, a.balance, coalesce(h.total, 0) FROM ledger_accounts a
         LEFT JOIN (SELECT held_id, sum(remaining) AS total FROM ledger_holds WHERE status = 'pending' GROUP BY held_id) h
                ON h.held_id = a.id
         WHERE a.kind = 'held' AND a.balance <> coalesce(h.total, 0)",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, balance, pending) in holds {
        r.problems.push(format!(
            "held account {id} holds {balance} but its pending holds add up to {pending}"
        ));
    }
    let serials: Vec<(i64, Decimal, Decimal)> = sqlx::query_as(
        "SELECT a.id, a.balance, coalesce(b.kg, 0)::numeric FROM ledger_accounts a
         LEFT JOIN (SELECT account_id, sum(upper(serials) - lower(serials)) AS kg FROM serial_blocks GROUP BY account_id) b
                ON b.account_id = a.id
         WHERE a.asset = 'credit' AND a.kind <> 'issuance_source' AND a.balance <> coalesce(b.kg, 0)",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (id, balance, kg) in serials {
        r.problems.push(format!(
            "credit account {id} holds {balance} kg but {kg} kg of serials"
        ));
    }
    let (source, issued): (Decimal, Decimal) = sqlx::query_as(
        "SELECT (SELECT balance FROM ledger_accounts WHERE owner_id IS NULL AND asset = 'credit' AND kind = 'issuance_source'),
                coalesce((SELECT sum(gross_kg) FROM credit_issuances), 0)::numeric",
    )
    .fetch_one(&mut *conn)
    .await?;
    if source + issued != Decimal::ZERO {
        r.problems.push(format!(
            "the issuance source stands at {source} kg but {issued} kg were issued"
        ));
    }
    Ok(r)
}
