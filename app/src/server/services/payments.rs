//! Money in: payments through the gateway (top-ups and checkouts), the webhook that settles
//! them — verified, recorded, idempotent by payment id —, the expiry of payments nobody
//! answered, and the money wallet's page.

use crate::api::payments::{MoneyMovement, MoneyWallet, PaymentLine};
use crate::domain::market::{format_money, parse_money};
use crate::domain::notification::Kind;
use crate::error::AppError;
use crate::server::ledger::{self, AccountKind, Asset, Leg, Transfer};
use crate::server::notify;
use crate::server::payments::sandbox::{Delivery, Sandbox};
use crate::server::payments::{
    GatewayEvent, Outcome, PaymentGateway, PaymentIntent, Start, WebhookError,
};
use crate::server::services::{orders, withdrawals};
use crate::server::state::PaymentsConfig;
use crate::server::AppState;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The most one payment may be for.
pub const MAX_PAYMENT: i64 = 10_000_000_000;

/// The gateway payments go through. The sandbox is the only one that can run here; the Stripe
/// adapter builds and verifies Stripe's real messages but needs Stripe's servers. With the
/// sandbox off (production, unless switched on) there is none: paying through a gateway is
/// refused, so nothing can credit a wallet without real money.
pub fn gateway(config: &PaymentsConfig) -> Result<Sandbox, AppError> {
    if !config.sandbox {
        return Err(AppError::conflict(
            "Payments through a payment gateway are not available on this server. \
             Pay from your wallet balance instead.",
        ));
    }
    Ok(Sandbox::new(config.sandbox_secret.clone()))
}

pub struct Created {
    pub id: Uuid,
    pub number: String,
    /// Where the payer goes to pay.
    pub redirect: String,
}

/// Writes a pending payment and asks the gateway where the payer pays it.
pub(crate) async fn create(
    conn: &mut PgConnection,
    config: &PaymentsConfig,
    user: Uuid,
    purpose: &str,
    amount: Decimal,
) -> Result<Created, AppError> {
    let id = Uuid::new_v4();
    let number = format!(
        "PAY-{:06}",
        ledger::next_in_sequence(conn, "payment_number_seq").await?
    );
    let gw = gateway(config)?;
    sqlx::query(
        "INSERT INTO payments (id, number, user_id, gateway, purpose, amount, currency, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))",
    )
    .bind(id)
    .bind(&number)
    .bind(user)
    .bind(gw.name())
    .bind(purpose)
    .bind(amount)
    .bind(&config.currency)
    .bind(config.timeout_secs as f64)
    .execute(&mut *conn)
    .await?;
    let start = gw.start(&PaymentIntent {
        payment_id: id,
        number: &number,
        amount,
        currency: &config.currency,
        description: if purpose == "checkout" {
            "EV Carbon Exchange checkout"
        } else {
            "EV Carbon Exchange wallet top-up"
        },
        return_url: format!("/money?payment={number}"),
        cancel_url: "/money".into(),
    });
    let redirect = match start {
        Start::Redirect(url) => url,
        Start::Call(_) => {
            return Err(crate::server::internal(
                "the configured gateway needs an outbound call",
            ))
        }
    };
    Ok(Created {
        id,
        number,
        redirect,
    })
}

/// The gateway page of a pending payment.
pub(crate) async fn redirect_of(
    conn: &mut PgConnection,
    payment: Uuid,
) -> Result<String, sqlx::Error> {
    let gateway: String = sqlx::query_scalar("SELECT gateway FROM payments WHERE id = $1")
        .bind(payment)
        .fetch_one(conn)
        .await?;
    Ok(match gateway.as_str() {
        "sandbox" => format!("/sandbox/pay/{payment}"),
        _ => "/money".into(),
    })
}

/// Starts a top-up of the caller's wallet.
#[tracing::instrument(skip(state), err(level = "info"))]
pub async fn top_up(state: &AppState, user: Uuid, amount: &str) -> Result<Created, AppError> {
    let config = &state.config.payments;
    gateway(config)?;
    let amount =
        parse_money(amount, &config.currency).map_err(|m| AppError::invalid("amount", m))?;
    if amount > config.max_top_up {
        return Err(AppError::invalid(
            "amount",
            format!(
                "One top-up can be at most {}.",
                format_money(config.max_top_up, &config.currency)
            ),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let created = create(&mut tx, &state.config.payments, user, "top_up", amount).await?;
    tx.commit().await?;
    Ok(created)
}

/// What the webhook endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookReply {
    /// Acted on it (the payment's new status).
    Applied(String),
    /// The payment was settled before: nothing changed.
    AlreadySettled(String),
    /// A genuine delivery the platform does not act on.
    Ignored(String),
}

/// Verifies and applies one webhook delivery. Every delivery is recorded; a bad signature is
/// refused and logged; a payment is settled once, so a replayed delivery changes nothing.
pub async fn receive_webhook(
    state: &AppState,
    gateway_name: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<WebhookReply, WebhookError> {
    let gw = match gateway(&state.config.payments) {
        Ok(gw) if gw.name() == gateway_name => gw,
        _ => {
            return Err(WebhookError::Malformed(format!(
                "no gateway called {gateway_name} takes payments here"
            )))
        }
    };
    let verified = gw.verify_webhook(headers, body, Utc::now().timestamp());
    let event = match verified {
        Ok(event) => event,
        Err(WebhookError::Ignored(what)) => {
            record_event(
                &state.pool,
                gateway_name,
                None,
                None,
                true,
                "ignored",
                &what,
            )
            .await;
            return Ok(WebhookReply::Ignored(what));
        }
        Err(e) => {
            tracing::warn!(gateway = gateway_name, error = %e, "refused a payment webhook");
            record_event(
                &state.pool,
                gateway_name,
                None,
                None,
                false,
                "refused",
                &e.to_string(),
            )
            .await;
            return Err(e);
        }
    };
    // A failure here (a deadlock, a lost connection) writes nothing; the gateway is answered
    // with an error and delivers again, as gateways do.
    apply(&state.pool, gateway_name, &event).await.map_err(|e| {
        tracing::error!(payment = %event.payment_id, error = %e, "could not apply a payment webhook");
        WebhookError::Unavailable("the platform could not apply it now; deliver it again".into())
    })
}

async fn record_event(
    pool: &PgPool,
    gateway: &str,
    event_id: Option<&str>,
    payment: Option<Uuid>,
    verified: bool,
    outcome: &str,
    detail: &str,
) {
    let r = sqlx::query(
        "INSERT INTO payment_events (gateway, event_id, payment_id, verified, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(gateway)
    .bind(event_id)
    .bind(payment)
    .bind(verified)
    .bind(outcome)
    .bind(detail)
    .execute(pool)
    .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "could not record a payment event");
    }
}

async fn apply(
    pool: &PgPool,
    gateway: &str,
    event: &GatewayEvent,
) -> Result<WebhookReply, AppError> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, Uuid, Decimal, String, String, String)> = sqlx::query_as(
        "SELECT number, user_id, amount, status, gateway, currency FROM payments WHERE id = $1 FOR UPDATE",
    )
    .bind(event.payment_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((number, user, amount, status, payment_gateway, currency)) = row else {
        drop(tx);
        record_event(
            pool,
            gateway,
            Some(&event.event_id),
            Some(event.payment_id),
            true,
            "unknown payment",
            "",
        )
        .await;
        return Ok(WebhookReply::Ignored("unknown payment".into()));
    };
    if payment_gateway != gateway {
        return Ok(WebhookReply::Ignored("another gateway's payment".into()));
    }
    let late_success = status == "expired" && event.outcome == Outcome::Succeeded;
    if status != "pending" && !late_success {
        drop(tx);
        record_event(
            pool,
            gateway,
            Some(&event.event_id),
            Some(event.payment_id),
            true,
            "already settled",
            &status,
        )
        .await;
        return Ok(WebhookReply::AlreadySettled(status));
    }
    let settled = Settled {
        payment: event.payment_id,
        number: &number,
        user,
        amount,
        currency: &currency,
        via: gateway,
        gateway_ref: event.gateway_ref.as_deref(),
        tell: true,
    };
    let new_status = match &event.outcome {
        Outcome::Succeeded => {
            succeed(&mut tx, &settled, late_success).await?;
            "succeeded"
        }
        Outcome::Failed { reason } => {
            fail(&mut tx, &settled, reason, "failed").await?;
            "failed"
        }
    };
    sqlx::query(
        "INSERT INTO payment_events (gateway, event_id, payment_id, verified, outcome) VALUES ($1, $2, $3, true, $4)",
    )
    .bind(gateway)
    .bind(&event.event_id)
    .bind(event.payment_id)
    .bind(new_status)
    .execute(&mut *tx)
    .await
    ?;
    tx.commit().await?;
    Ok(WebhookReply::Applied(new_status.into()))
}

/// A payment's settlement: whose, how much, through what.
struct Settled<'a> {
    payment: Uuid,
    number: &'a str,
    user: Uuid,
    amount: Decimal,
    currency: &'a str,
    /// The gateway's name, or "an administrator".
    via: &'a str,
    gateway_ref: Option<&'a str>,
    /// The payer is told here (an admin's settlement tells them its own way).
    tell: bool,
}

/// The money arrived: it moves from the gateway's clearing account into the payer's wallet, a
/// checkout's order completes, and the payer is told.
async fn succeed(conn: &mut PgConnection, p: &Settled<'_>, late: bool) -> Result<(), AppError> {
    let clearing =
        ledger::platform_account(conn, Asset::Money, AccountKind::GatewayClearing).await?;
    let wallet = ledger::user_account(conn, p.user, Asset::Money, AccountKind::Available).await?;
    let transfer = ledger::transfer(
        conn,
        Transfer {
            kind: "top_up",
            legs: vec![Leg::new(clearing, -p.amount), Leg::new(wallet, p.amount)],
            idempotency_key: Some(&format!("payment:{}", p.payment)),
            reference: Some(p.number.to_owned()),
            memo: format!("paid through {}", p.via),
            actor: Some(p.user),
            ..Transfer::default()
        },
    )
    .await?
    .id();
    sqlx::query(
        "UPDATE payments SET status = 'succeeded', transfer_id = $2, gateway_ref = $3, completed_at = now()
         WHERE id = $1",
    )
    .bind(p.payment)
    .bind(transfer)
    .bind(p.gateway_ref)
    .execute(&mut *conn)
    .await?;
    // A checkout completes its order; after expiry the order is already cancelled and the
    // money simply stays in the wallet.
    let order = orders::complete_checkout(conn, p.payment, p.currency).await?;
    if !p.tell {
        return Ok(());
    }
    let paid = format_money(p.amount, p.currency);
    let (body, link) = match (&order, late) {
        (Some(order), _) => (
            format!(
                "{paid} received through {}: order {order} is complete.",
                p.via
            ),
            format!("/orders/{order}"),
        ),
        (None, true) => (
            format!("{paid} arrived after the payment had expired; it is in your wallet."),
            "/money".to_owned(),
        ),
        (None, false) => (
            format!("{paid} received through {} is in your wallet.", p.via),
            "/money".to_owned(),
        ),
    };
    notify::send(
        conn,
        p.user,
        Kind::PaymentReceived,
        &format!("Payment {} received", p.number),
        &body,
        &link,
    )
    .await?;
    Ok(())
}

/// The payment failed (`status` failed), or is given up (`expired`: money the gateway still
/// collects later lands in the wallet): a checkout's order is cancelled and what it reserved
/// released.
async fn fail(
    conn: &mut PgConnection,
    p: &Settled<'_>,
    reason: &str,
    status: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE payments SET status = $4, failure = $2, gateway_ref = $3, completed_at = now()
         WHERE id = $1",
    )
    .bind(p.payment)
    .bind(reason)
    .bind(p.gateway_ref)
    .bind(status)
    .execute(&mut *conn)
    .await?;
    let order =
        orders::cancel_checkout(conn, p.payment, &format!("The payment failed: {reason}")).await?;
    if p.tell {
        tell_failed(
            conn,
            p.user,
            p.number,
            order.as_deref(),
            &format!("It failed: {reason}."),
        )
        .await?;
    }
    Ok(())
}

/// An order stuck waiting for its payment, settled by an admin: `confirm` when the gateway
/// collected the money but its answer never arrived (the order completes exactly as on the
/// gateway's success), or cancel it (released as on a failure). Once; audited; the buyer is
/// told.
#[tracing::instrument(skip(pool), err(level = "info"))]
pub async fn resolve_stuck(
    pool: &PgPool,
    admin: Uuid,
    order: &str,
    confirm: bool,
) -> Result<String, AppError> {
    let order = order.trim().to_uppercase();
    let mut tx = pool.begin().await?;
    let row: Option<(Option<Uuid>, String, Uuid)> = sqlx::query_as(
        "SELECT payment_id, status, buyer_id FROM orders WHERE number = $1 FOR UPDATE",
    )
    .bind(&order)
    .fetch_optional(&mut *tx)
    .await?;
    let (payment, status, buyer) = row.ok_or_else(|| AppError::not_found("The order"))?;
    let Some(payment) = payment.filter(|_| status == "pending") else {
        return Err(AppError::conflict(format!(
            "Order {order} is {status}: only an order waiting for its payment can be confirmed or cancelled."
        )));
    };
    let (number, amount, currency): (String, Decimal, String) =
        sqlx::query_as("SELECT number, amount, currency FROM payments WHERE id = $1 FOR UPDATE")
            .bind(payment)
            .fetch_one(&mut *tx)
            .await?;
    let settled = Settled {
        payment,
        number: &number,
        user: buyer,
        amount,
        currency: &currency,
        via: "an administrator",
        // The gateway never answered, so there is no reference of theirs; the audit trail
        // records who settled it.
        gateway_ref: None,
        tell: false,
    };
    if confirm {
        succeed(&mut tx, &settled, false).await?;
    } else {
        // Given up rather than failed: should the gateway still collect it, the money lands in
        // the buyer's wallet.
        fail(
            &mut tx,
            &settled,
            "cancelled by an administrator",
            "expired",
        )
        .await?;
    }
    notify::send(
        &mut tx,
        buyer,
        Kind::OrderUpdated,
        &if confirm {
            format!("Order {order} confirmed")
        } else {
            format!("Order {order} cancelled")
        },
        if confirm {
            "An administrator confirmed your payment; the credits are in your wallet."
        } else {
            "An administrator cancelled it; nothing was charged and anything reserved is released."
        },
        &format!("/orders/{order}"),
    )
    .await?;
    crate::server::audit::record(
        &mut tx,
        crate::server::audit::AuditEntry {
            actor_id: Some(admin),
            action: if confirm {
                "order.confirm"
            } else {
                "order.cancel"
            },
            entity: "order",
            entity_id: order.clone(),
            before: Some(serde_json::json!({ "status": "pending", "payment": number })),
            after: Some(
                serde_json::json!({ "status": if confirm { "completed" } else { "cancelled" } }),
            ),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(if confirm { "completed" } else { "cancelled" }.to_owned())
}

/// Pending payments past their time expire; their checkouts are cancelled. Answers how many.
pub async fn expire_due(pool: &PgPool) -> Result<usize, AppError> {
    let mut tx = pool.begin().await?;
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM payments WHERE status = 'pending' AND expires_at <= now()
         ORDER BY expires_at LIMIT 200 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    for id in &due {
        sqlx::query(
            "UPDATE payments SET status = 'expired', failure = 'Nobody completed the payment in time.',
                    completed_at = now() WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let order =
            orders::cancel_checkout(&mut tx, *id, "The payment was not completed in time.").await?;
        let (user, number): (Uuid, String) =
            sqlx::query_as("SELECT user_id, number FROM payments WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        tell_failed(
            &mut tx,
            user,
            &number,
            order.as_deref(),
            "Nobody completed it in time.",
        )
        .await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// The payer hears that a payment did not go through (and what became of its order).
async fn tell_failed(
    conn: &mut PgConnection,
    user: Uuid,
    number: &str,
    order: Option<&str>,
    why: &str,
) -> Result<(), sqlx::Error> {
    let (body, link) = match order {
        Some(order) => (
            format!("{why} Order {order} is cancelled and nothing was charged."),
            format!("/orders/{order}"),
        ),
        None => (format!("{why} Nothing was charged."), "/money".to_owned()),
    };
    notify::send(
        conn,
        user,
        Kind::PaymentFailed,
        &format!("Payment {number} did not go through"),
        &body,
        &link,
    )
    .await
}

/// What the sandbox's hosted page shows.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SandboxPayment {
    pub id: Uuid,
    pub number: String,
    pub amount: Decimal,
    pub currency: String,
    pub purpose: String,
    pub status: String,
    pub failure: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub payer: String,
    pub order: Option<String>,
}

/// A sandbox payment of `payer`'s: nobody else may see, pay or decline it (the payment id
/// alone is no key: it travels in URLs).
pub async fn sandbox_payment(
    pool: &PgPool,
    payer: Uuid,
    id: Uuid,
) -> Result<Option<SandboxPayment>, AppError> {
    Ok(sqlx::query_as(
        "SELECT p.id, p.number, p.amount, p.currency, p.purpose, p.status, p.failure, p.expires_at,
                u.full_name AS payer, o.number AS order
         FROM payments p JOIN users u ON u.id = p.user_id LEFT JOIN orders o ON o.payment_id = p.id
         WHERE p.id = $1 AND p.user_id = $2 AND p.gateway = 'sandbox'",
    )
    .bind(id)
    .bind(payer)
    .fetch_optional(pool)
    .await?)
}

/// Where the payer returns to after the gateway: the order of a checkout, the wallet otherwise.
pub fn return_url(p: &SandboxPayment) -> String {
    match &p.order {
        Some(order) => format!("/orders/{order}"),
        None => format!("/money?payment={}", p.number),
    }
}

/// The payer's choice on the sandbox page: `succeed` and `fail` send a signed webhook the way
/// a real gateway would (delivered in-process, through the same verification); `timeout` sends
/// nothing, so the payment expires. `payment` is one `sandbox_payment` found for the payer.
pub async fn sandbox_choice(
    state: &AppState,
    payment: &SandboxPayment,
    choice: &str,
) -> Result<Option<WebhookReply>, AppError> {
    let payment = payment.id;
    let status = match choice {
        "succeed" => "succeeded",
        "fail" => "failed",
        "timeout" => return Ok(None),
        _ => {
            return Err(AppError::invalid(
                "choice",
                "Choose succeed, fail or timeout.",
            ))
        }
    };
    let gw = gateway(&state.config.payments)?;
    let delivery = Delivery {
        event_id: format!("evt_{}", Uuid::new_v4().simple()),
        payment_id: payment,
        status: status.into(),
        reason: if status == "failed" {
            "The card was declined (sandbox).".into()
        } else {
            String::new()
        },
    };
    let (body, signature) = gw.delivery(&delivery, Utc::now().timestamp());
    let mut headers = http::HeaderMap::new();
    headers.insert(
        crate::server::payments::sandbox::SIGNATURE_HEADER,
        http::HeaderValue::from_str(&signature).map_err(crate::server::internal)?,
    );
    receive_webhook(state, gw.name(), &headers, &body)
        .await
        .map(Some)
        .map_err(crate::server::internal)
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    number: String,
    purpose: String,
    amount: Decimal,
    status: String,
    failure: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    id: Uuid,
    order: Option<String>,
}

impl From<PaymentRow> for PaymentLine {
    fn from(r: PaymentRow) -> Self {
        PaymentLine {
            pay_url: (r.status == "pending").then(|| format!("/sandbox/pay/{}", r.id)),
            number: r.number,
            purpose: r.purpose,
            amount: r.amount,
            status: r.status,
            failure: r.failure,
            created_at: r.created_at,
            expires_at: r.expires_at,
            order: r.order,
        }
    }
}

const PAYMENT_SELECT: &str =
    "SELECT p.number, p.purpose, p.amount, p.status, p.failure, p.created_at,
        p.expires_at, p.id, o.number AS order
    FROM payments p LEFT JOIN orders o ON o.payment_id = p.id";

pub async fn get(pool: &PgPool, user: Uuid, number: &str) -> Result<PaymentLine, AppError> {
    let row: Option<PaymentRow> = sqlx::query_as(&format!(
        "{PAYMENT_SELECT} WHERE p.number = $1 AND p.user_id = $2"
    ))
    .bind(number.trim().to_uppercase())
    .bind(user)
    .fetch_optional(pool)
    .await?;
    row.map(PaymentLine::from)
        .ok_or_else(|| AppError::not_found("The payment"))
}

/// The caller's money wallet.
pub async fn wallet(state: &AppState, user: Uuid) -> Result<MoneyWallet, AppError> {
    let pool = &state.pool;
    let mut conn = pool.acquire().await?;
    let available = ledger::balance(&mut conn, user, Asset::Money, AccountKind::Available).await?;
    let held = ledger::balance(&mut conn, user, Asset::Money, AccountKind::Held).await?;
    let kyc_verified: bool =
        sqlx::query_scalar("SELECT kyc_verified_at IS NOT NULL FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&mut *conn)
            .await?;
    drop(conn);
    let movements: Vec<(
        DateTime<Utc>,
        String,
        String,
        Decimal,
        Decimal,
        Option<String>,
        String,
    )> = sqlx::query_as(
        "SELECT t.created_at, t.kind, a.kind, e.amount, e.balance_after, t.reference, t.memo
             FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id
             JOIN ledger_transfers t ON t.id = e.transfer_id
             WHERE a.owner_id = $1 AND a.asset = 'money'
             ORDER BY e.id DESC LIMIT 100",
    )
    .bind(user)
    .fetch_all(pool)
    .await?;
    let payments: Vec<PaymentRow> = sqlx::query_as(&format!(
        "{PAYMENT_SELECT} WHERE p.user_id = $1 ORDER BY p.created_at DESC LIMIT 50"
    ))
    .bind(user)
    .fetch_all(pool)
    .await?;
    Ok(MoneyWallet {
        kyc_verified,
        currency: state.config.payments.currency.clone(),
        available,
        held,
        movements: movements
            .into_iter()
            .map(
                |(at, kind, account, amount, balance_after, reference, memo)| MoneyMovement {
                    at,
                    kind,
                    account,
                    amount,
                    balance_after,
                    reference,
                    memo,
                },
            )
            .collect(),
        payments: payments.into_iter().map(PaymentLine::from).collect(),
        withdrawals: withdrawals::of_user(pool, user).await?,
        rules: withdrawals::rules(pool, user).await?,
        withdrawal_key: Uuid::new_v4().to_string(),
    })
}
