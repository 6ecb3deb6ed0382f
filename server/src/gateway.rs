//! Payment gateways over HTTP: the sandbox gateway's own pages (it stands in for a real
//! provider: the hosted payment page where the payer chooses what happens) and the webhook
//! endpoint every gateway posts its signed results to.

use crate::startup::ServerState;
use app::domain::market::format_money;
use app::error::AppError;
use app::server::services::payments::{self, WebhookReply};
use app::server::session;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Sandbox Pay</title><link rel="stylesheet" href="/sandbox.css"></head>
<body><main class="sandbox"><p class="brand">Sandbox Pay <span>test gateway · no real money moves</span></p>{body}</main></body></html>"#,
        title = escape(title)
    ))
}

/// The payer's own pending or settled sandbox payment, or the answer to give instead: the
/// sign-in page for a visitor, "no such payment" for anyone else's (the id is in URLs, so it
/// is no key by itself).
async fn payers_payment(
    s: &ServerState,
    session: &Session,
    id: &str,
) -> Result<payments::SandboxPayment, Response> {
    let unknown = || {
        (
            StatusCode::NOT_FOUND,
            page("Unknown payment", "<h1>No such payment</h1>"),
        )
            .into_response()
    };
    let internal = |e: AppError| {
        tracing::error!(error = %e, "sandbox payment page");
        (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
    };
    let payer = match session::current(&s.app, session).await {
        Ok(Some(user)) => user.id,
        Ok(None) => {
            let next = format!("/sandbox/pay/{}", url_component(id));
            return Err(
                Redirect::to(&format!("/login?next={}", url_component(&next))).into_response(),
            );
        }
        Err(e) => return Err(internal(e)),
    };
    let Ok(id) = Uuid::parse_str(id) else {
        return Err(unknown());
    };
    match payments::sandbox_payment(&s.app.pool, payer, id).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(unknown()),
        Err(e) => Err(internal(e)),
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn url_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /sandbox/pay/{payment}`: what is being paid, and the three outcomes to choose from.
/// Only for the payer, signed in.
pub async fn payment_page(
    State(s): State<ServerState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let p = match payers_payment(&s, &session, &id).await {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let id = p.id;
    let amount = escape(&format_money(p.amount, &p.currency));
    let what = if p.purpose == "checkout" {
        format!(
            "Checkout for order {}",
            escape(p.order.as_deref().unwrap_or(""))
        )
    } else {
        "Wallet top-up".to_owned()
    };
    let back = escape(&payments::return_url(&p));
    if p.status != "pending" {
        let body = format!(
            r#"<h1>Payment {number} is {status}</h1>{failure}<p><a class="button" href="{back}">Back to EV Carbon Exchange</a></p>"#,
            number = escape(&p.number),
            status = escape(&p.status),
            failure = p
                .failure
                .as_deref()
                .map(|f| format!("<p>{}</p>", escape(f)))
                .unwrap_or_default(),
        );
        return page("Payment settled", &body).into_response();
    }
    let body = format!(
        r#"<h1>Pay {amount}</h1>
<dl><dt>To</dt><dd>EV Carbon Exchange</dd><dt>For</dt><dd>{what}</dd><dt>Payer</dt><dd>{payer}</dd><dt>Reference</dt><dd>{number}</dd>
<dt>Expires</dt><dd>{expires}</dd></dl>
<form method="post" action="/sandbox/pay/{id}">
<fieldset><legend>What should happen?</legend>
<button type="submit" name="choice" value="succeed" class="button primary">Pay {amount}</button>
<button type="submit" name="choice" value="fail" class="button">Decline the card</button>
<button type="submit" name="choice" value="timeout" class="button">Bank does not answer</button>
</fieldset></form>
<p><a href="{back}">Cancel and return</a></p>"#,
        payer = escape(&p.payer),
        number = escape(&p.number),
        expires = p.expires_at.format("%Y-%m-%d %H:%M UTC"),
    );
    page(&format!("Pay {}", p.number), &body).into_response()
}

#[derive(Deserialize)]
pub struct Choice {
    choice: String,
}

/// `POST /sandbox/pay/{payment}`: the payer's choice (only the payer's, signed in). Success and
/// failure reach the platform as signed webhooks; a timeout sends nothing and the payment
/// expires on its own.
pub async fn choose(
    State(s): State<ServerState>,
    session: Session,
    Path(id): Path<String>,
    Form(choice): Form<Choice>,
) -> Response {
    let p = match payers_payment(&s, &session, &id).await {
        Ok(p) => p,
        Err(answer) => return answer,
    };
    let id = p.id;
    match payments::sandbox_choice(&s.app, &p, &choice.choice).await {
        Ok(Some(_)) => Redirect::to(&payments::return_url(&p)).into_response(),
        Ok(None) => page(
            "Waiting for the bank",
            &format!(
                r#"<h1>The bank did not answer</h1><p>Nothing was charged. Payment {number} stays open until {expires}; then it expires{order}.</p>
<p><a class="button" href="/sandbox/pay/{id}">Try again</a> <a href="{back}">Back to EV Carbon Exchange</a></p>"#,
                number = escape(&p.number),
                expires = p.expires_at.format("%H:%M UTC"),
                order = if p.order.is_some() { " and the order is cancelled" } else { "" },
                back = escape(&payments::return_url(&p)),
            ),
        )
        .into_response(),
        Err(e) => (StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST), e.to_string()).into_response(),
    }
}

/// `POST /webhooks/payments/{gateway}`: a gateway's signed result. 200 when applied or already
/// applied (a replay changes nothing), 400 when refused (bad signature, malformed), 503 when it
/// could not be applied now (deliver again).
pub async fn webhook(
    State(s): State<ServerState>,
    Path(gateway): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = |status: StatusCode, outcome: &str, detail: &str| {
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "outcome": outcome, "detail": detail }).to_string(),
        )
            .into_response()
    };
    match payments::receive_webhook(&s.app, &gateway, &headers, &body).await {
        Ok(WebhookReply::Applied(status)) => json(StatusCode::OK, "applied", &status),
        Ok(WebhookReply::AlreadySettled(status)) => {
            json(StatusCode::OK, "already_settled", &status)
        }
        Ok(WebhookReply::Ignored(what)) => json(StatusCode::OK, "ignored", &what),
        // Gateways deliver again after a 5xx: nothing was written.
        Err(e @ app::server::payments::WebhookError::Unavailable(_)) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        ),
        Err(e) => json(StatusCode::BAD_REQUEST, "refused", &e.to_string()),
    }
}
