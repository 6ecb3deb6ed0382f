//! The Stripe adapter: builds the Checkout Session request that starts a payment and verifies
//! and reads Stripe's signed webhooks (`Stripe-Signature`). It never talks to the network itself.

use super::{
    signature_matches, GatewayEvent, OutboundRequest, Outcome, PaymentGateway, PaymentIntent,
    Start, WebhookError,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashMap;
use uuid::Uuid;

pub const API_BASE: &str = "https://api.stripe.com";
/// Pinned so a change of the account's default API version cannot change what we send or read.
pub const API_VERSION: &str = "2024-06-20";
pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// Stripe's own libraries refuse deliveries signed more than five minutes ago.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Currencies Stripe takes in whole units (https://docs.stripe.com/currencies#zero-decimal).
pub const ZERO_DECIMAL_CURRENCIES: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];
/// Currencies Stripe takes in thousandths, whose last digit must be 0.
pub const THREE_DECIMAL_CURRENCIES: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];

/// No `Debug`: it holds the secret key.
pub struct Stripe {
    secret_key: String,
    webhook_secret: String,
    tolerance_secs: i64,
}

impl Stripe {
    /// `secret_key` is the API key (`sk_…`); `webhook_secret` the endpoint's signing secret
    /// (`whsec_…`), used as is, prefix included, as Stripe does.
    pub fn new(secret_key: impl Into<String>, webhook_secret: impl Into<String>) -> Stripe {
        Stripe {
            secret_key: secret_key.into(),
            webhook_secret: webhook_secret.into(),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }

    pub fn with_tolerance(mut self, secs: i64) -> Stripe {
        self.tolerance_secs = secs;
        self
    }

    /// The Checkout Session create call for `intent`, or why Stripe could not take it.
    pub fn checkout_request(&self, intent: &PaymentIntent<'_>) -> Result<OutboundRequest, String> {
        let unit_amount = minor_units(intent.amount, intent.currency)?;
        let id = intent.payment_id.to_string();
        // Stripe refuses a product without a name.
        let name = if intent.description.trim().is_empty() {
            intent.number
        } else {
            intent.description
        };
        let form = vec![
            ("mode", "payment".to_string()),
            // Both carry the payment id back in the webhook; the metadata also shows in the
            // Dashboard, and the PaymentIntent's metadata in the payment's own view.
            ("client_reference_id", id.clone()),
            ("metadata[payment_id]", id.clone()),
            ("metadata[number]", intent.number.to_string()),
            ("line_items[0][quantity]", "1".to_string()),
            (
                "line_items[0][price_data][currency]",
                intent.currency.trim().to_ascii_lowercase(),
            ),
            (
                "line_items[0][price_data][unit_amount]",
                unit_amount.to_string(),
            ),
            (
                "line_items[0][price_data][product_data][name]",
                name.to_string(),
            ),
            ("payment_intent_data[metadata][payment_id]", id.clone()),
            ("success_url", intent.return_url.clone()),
            ("cancel_url", intent.cancel_url.clone()),
        ];
        Ok(OutboundRequest {
            method: "POST",
            url: format!("{API_BASE}/v1/checkout/sessions"),
            headers: vec![
                (
                    "Authorization".into(),
                    format!("Bearer {}", self.secret_key),
                ),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                // A retried start returns the session already created instead of a second one.
                ("Idempotency-Key".into(), id),
                ("Stripe-Version".into(), API_VERSION.into()),
            ],
            form: form.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        })
    }
}

/// `amount` in the currency's smallest unit, as Stripe's `unit_amount` wants it. Refuses what
/// Stripe would refuse or what would have to be rounded (money is never rounded silently).
pub fn minor_units(amount: Decimal, currency: &str) -> Result<i64, String> {
    let code = currency.trim().to_ascii_uppercase();
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("{currency:?} is not an ISO 4217 currency code."));
    }
    if amount <= Decimal::ZERO {
        return Err(format!("The amount must be positive, not {amount} {code}."));
    }
    let factor: i64 = if ZERO_DECIMAL_CURRENCIES.contains(&code.as_str()) {
        1
    } else if THREE_DECIMAL_CURRENCIES.contains(&code.as_str()) {
        1000
    } else {
        100
    };
    let scaled = amount
        .checked_mul(Decimal::from(factor))
        .ok_or_else(|| format!("{amount} {code} is too large."))?;
    if !scaled.fract().is_zero() {
        return Err(if factor == 1 {
            format!("{code} is charged in whole units at Stripe: {amount} {code} is not a whole amount.")
        } else {
            format!("{amount} {code} has more decimals than {code} allows.")
        });
    }
    let units = scaled
        .to_i64()
        .ok_or_else(|| format!("{amount} {code} is too large."))?;
    // Stripe requires three-decimal amounts to end in 0, so cards can process them.
    if factor == 1000 && units % 10 != 0 {
        return Err(format!(
            "Stripe takes {code} only to two decimals: {amount} {code} would have to be rounded."
        ));
    }
    Ok(units)
}

/// Reads `t=…,v1=…,v1=…,v0=…`: the timestamp and every `v1` signature (several while a secret is
/// being rolled). `v0` (test-mode only) and unknown schemes are skipped, as Stripe asks.
pub fn parse_signature_header(value: &str) -> Result<(i64, Vec<&str>), WebhookError> {
    let malformed = |what: &str| WebhookError::Malformed(format!("Stripe-Signature: {what}"));
    let mut t = None;
    let mut v1 = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| malformed("an element is not key=value"))?;
        match k.trim() {
            "t" => {
                // Two timestamps would leave it open which one was signed.
                if t.is_some() {
                    return Err(malformed("two timestamps"));
                }
                t = Some(
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| malformed("the timestamp is not a number"))?,
                );
            }
            "v1" => v1.push(v.trim()),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| malformed("no timestamp"))?;
    if v1.is_empty() {
        return Err(malformed("no v1 signature"));
    }
    Ok((t, v1))
}

#[derive(Deserialize)]
struct StartAnswer {
    id: Option<String>,
    url: Option<String>,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    /// Read as a session only for the event types that carry one.
    object: serde_json::Value,
}

#[derive(Deserialize)]
struct Session {
    id: String,
    #[serde(default)]
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
    #[serde(default)]
    payment_status: Option<String>,
}

impl Session {
    fn payment_id(&self) -> Result<Uuid, WebhookError> {
        let raw = self
            .client_reference_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .or_else(|| {
                self.metadata
                    .as_ref()
                    .and_then(|m| m.get("payment_id"))
                    .map(String::as_str)
            })
            .ok_or_else(|| WebhookError::Malformed("the session names no payment".into()))?;
        Uuid::parse_str(raw)
            .map_err(|_| WebhookError::Malformed(format!("payment id {raw:?} is not a UUID")))
    }
}

impl PaymentGateway for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn start(&self, intent: &PaymentIntent<'_>) -> Start {
        match self.checkout_request(intent) {
            Ok(request) => Start::Call(request),
            // `start` cannot fail: an amount Stripe cannot take creates nothing at Stripe and
            // sends the payer back; the pending payment then expires. Callers wanting the
            // reason call `checkout_request` (or `minor_units`) first.
            Err(reason) => {
                tracing::warn!(payment = %intent.payment_id, %reason, "Stripe cannot take this payment");
                Start::Redirect(intent.cancel_url.clone())
            }
        }
    }

    fn parse_start_response(&self, body: &str) -> Result<(String, String), String> {
        let answer: StartAnswer = serde_json::from_str(body)
            .map_err(|e| format!("Stripe's answer is not a Checkout Session: {e}"))?;
        if let Some(ApiError { message, kind }) = answer.error {
            return Err(message.unwrap_or_else(|| {
                format!(
                    "Stripe refused the request ({}).",
                    kind.as_deref().unwrap_or("unknown error")
                )
            }));
        }
        match (answer.id, answer.url) {
            (Some(id), Some(url)) if !id.is_empty() && !url.is_empty() => Ok((id, url)),
            _ => Err("Stripe's Checkout Session has no id or no url.".into()),
        }
    }

    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<GatewayEvent, WebhookError> {
        let header = headers
            .get(SIGNATURE_HEADER)
            .ok_or(WebhookError::MissingSignature)?
            .to_str()
            .map_err(|_| WebhookError::Malformed("Stripe-Signature is not text".into()))?;
        let (t, signatures) = parse_signature_header(header)?;
        // Stripe signs "{t}.{raw body}": the body must be the bytes received, not re-serialised.
        let mut message = format!("{t}.").into_bytes();
        message.extend_from_slice(body);
        if !signatures
            .iter()
            .any(|s| signature_matches(self.webhook_secret.as_bytes(), &message, s))
        {
            return Err(WebhookError::BadSignature);
        }
        // Checked after the signature, as Stripe's libraries do, so `t` is Stripe's own; both
        // directions are refused, so a captured delivery cannot be replayed later.
        if now.abs_diff(t) > self.tolerance_secs.unsigned_abs() {
            return Err(WebhookError::Stale);
        }
        let event: Event =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let session = || -> Result<Session, WebhookError> {
            serde_json::from_value(event.data.object.clone())
                .map_err(|e| WebhookError::Malformed(format!("the checkout session: {e}")))
        };
        let (session, outcome) = match event.kind.as_str() {
            "checkout.session.completed" => {
                let s = session()?;
                // `unpaid`: an async method (bank debit, …) is still pending and its own event
                // follows; `no_payment_required` cannot settle a payment of a positive amount.
                if s.payment_status.as_deref() != Some("paid") {
                    return Err(WebhookError::Ignored(format!(
                        "checkout.session.completed with payment_status {}",
                        s.payment_status.as_deref().unwrap_or("missing")
                    )));
                }
                (s, Outcome::Succeeded)
            }
            "checkout.session.async_payment_succeeded" => (session()?, Outcome::Succeeded),
            "checkout.session.async_payment_failed" => (
                session()?,
                Outcome::Failed {
                    reason: "The payment failed at Stripe.".into(),
                },
            ),
            "checkout.session.expired" => (
                session()?,
                Outcome::Failed {
                    reason: "The Stripe checkout expired before payment.".into(),
                },
            ),
            other => return Err(WebhookError::Ignored(other.to_string())),
        };
        Ok(GatewayEvent {
            event_id: event.id,
            payment_id: session.payment_id()?,
            outcome,
            gateway_ref: Some(session.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "whsec_test_secret";
    const PAYMENT_ID: &str = "6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11";

    fn gw() -> Stripe {
        Stripe::new("sk_test_123", SECRET)
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn intent<'a>(amount: &str, currency: &'a str) -> PaymentIntent<'a> {
        PaymentIntent {
            payment_id: Uuid::parse_str(PAYMENT_ID).unwrap(),
            number: "PAY-000042",
            amount: dec(amount),
            currency,
            description: "EV Carbon Exchange checkout",
            return_url: "https://carbon.example/money?payment=PAY-000042".into(),
            cancel_url: "https://carbon.example/money".into(),
        }
    }

    fn call(intent: &PaymentIntent<'_>) -> OutboundRequest {
        match gw().start(intent) {
            Start::Call(request) => request,
            other => panic!("Stripe starts with a call, got {other:?}"),
        }
    }

    fn header<'r>(req: &'r OutboundRequest, name: &str) -> Option<&'r str> {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn field<'r>(req: &'r OutboundRequest, key: &str) -> Option<&'r str> {
        req.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut message = format!("{t}.").into_bytes();
        message.extend_from_slice(body);
        super::super::hmac_sha256_hex(secret.as_bytes(), &message)
    }

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(SIGNATURE_HEADER, value.parse().unwrap());
        h
    }

    fn session(payment_status: &str) -> serde_json::Value {
        json!({
            "id": "cs_test_a1b2c3",
            "object": "checkout.session",
            "client_reference_id": PAYMENT_ID,
            "metadata": { "payment_id": PAYMENT_ID, "number": "PAY-000042" },
            "mode": "payment",
            "payment_status": payment_status,
            "status": "complete",
            "url": null
        })
    }

    fn event(kind: &str, object: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "evt_test_1",
            "object": "event",
            "api_version": API_VERSION,
            "created": 1_000,
            "livemode": false,
            "type": kind,
            "data": { "object": object }
        }))
        .unwrap()
    }

    /// Signs `body` at `t` with the test secret, as Stripe does, and verifies it at `now`.
    fn deliver(body: &[u8], t: i64, now: i64) -> Result<GatewayEvent, WebhookError> {
        let value = format!("t={t},v1={}", sign(SECRET, t, body));
        gw().verify_webhook(&headers(&value), body, now)
    }

    #[test]
    fn minor_units_follow_stripe_currency_rules() {
        assert_eq!(minor_units(dec("250000.00"), "VND"), Ok(250000));
        assert_eq!(minor_units(dec("250000"), "vnd"), Ok(250000));
        assert_eq!(minor_units(dec("1000"), "JPY"), Ok(1000));
        assert_eq!(minor_units(dec("19.99"), "USD"), Ok(1999));
        assert_eq!(minor_units(dec("0.01"), "EUR"), Ok(1));
        assert_eq!(minor_units(dec("5.12"), "KWD"), Ok(5120));
        let fraction = minor_units(dec("0.50"), "VND").unwrap_err();
        assert!(fraction.contains("whole"), "{fraction}");
        assert!(minor_units(dec("250000.01"), "VND").is_err());
        assert!(minor_units(dec("5.125"), "KWD").is_err());
        assert!(minor_units(dec("19.999"), "USD").is_err());
        assert!(minor_units(dec("0"), "USD").is_err());
        assert!(minor_units(dec("-1.00"), "USD").is_err());
        assert!(minor_units(dec("1.00"), "US").is_err());
    }

    #[test]
    fn a_vnd_intent_becomes_a_checkout_session_call() {
        let req = call(&intent("250000.00", "VND"));
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "https://api.stripe.com/v1/checkout/sessions");
        assert_eq!(
            req.body(),
            concat!(
                "mode=payment",
                "&client_reference_id=6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11",
                "&metadata%5Bpayment_id%5D=6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11",
                "&metadata%5Bnumber%5D=PAY-000042",
                "&line_items%5B0%5D%5Bquantity%5D=1",
                "&line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=vnd",
                "&line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=250000",
                "&line_items%5B0%5D%5Bprice_data%5D%5Bproduct_data%5D%5Bname%5D=EV+Carbon+Exchange+checkout",
                "&payment_intent_data%5Bmetadata%5D%5Bpayment_id%5D=6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11",
                "&success_url=https%3A%2F%2Fcarbon.example%2Fmoney%3Fpayment%3DPAY-000042",
                "&cancel_url=https%3A%2F%2Fcarbon.example%2Fmoney",
            )
        );
        assert_eq!(header(&req, "Authorization"), Some("Bearer sk_test_123"));
        assert_eq!(
            header(&req, "Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(header(&req, "Idempotency-Key"), Some(PAYMENT_ID));
        assert_eq!(header(&req, "Stripe-Version"), Some("2024-06-20"));
    }

    #[test]
    fn a_usd_intent_is_sent_in_cents() {
        let req = call(&intent("19.99", "USD"));
        assert_eq!(
            field(&req, "line_items[0][price_data][unit_amount]"),
            Some("1999")
        );
        assert_eq!(
            field(&req, "line_items[0][price_data][currency]"),
            Some("usd")
        );
        assert_eq!(
            req.body(),
            concat!(
                "mode=payment",
                "&client_reference_id=6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11",
                "&metadata%5Bpayment_id%5D=6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11",
                "&metadata%5Bnumber%5D=PAY-000042",
                "&line_items%5B0%5D%5Bquantity%5D=1",
                "&line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=usd",
                "&line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=1999",
                "&line_items%5B0%5D%5Bprice_data%5D%5Bproduct_data%5D%5Bname%5D=EV+Carbon+Exchange+checkout",
                "&payment_intent_data%5Bmetadata%5D%5Bpayment_id%5D=6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11",
                "&success_url=https%3A%2F%2Fcarbon.example%2Fmoney%3Fpayment%3DPAY-000042",
                "&cancel_url=https%3A%2F%2Fcarbon.example%2Fmoney",
            )
        );
    }

    #[test]
    fn a_fraction_of_a_dong_is_refused_before_calling_stripe() {
        let i = intent("0.50", "VND");
        let reason = gw().checkout_request(&i).unwrap_err();
        assert!(reason.contains("whole"), "{reason}");
        assert_eq!(
            gw().start(&i),
            Start::Redirect("https://carbon.example/money".into())
        );
    }

    #[test]
    fn the_session_answer_gives_its_id_and_url() {
        let gw = gw();
        assert_eq!(
            gw.parse_start_response(
                r#"{"id":"cs_test_a1","object":"checkout.session","payment_status":"unpaid","url":"https://checkout.stripe.com/c/pay/cs_test_a1"}"#
            ),
            Ok((
                "cs_test_a1".to_string(),
                "https://checkout.stripe.com/c/pay/cs_test_a1".to_string()
            ))
        );
        assert_eq!(
            gw.parse_start_response(
                r#"{"error":{"message":"Invalid currency: xyz.","param":"line_items[0][price_data][currency]","type":"invalid_request_error"}}"#
            ),
            Err("Invalid currency: xyz.".to_string())
        );
        assert!(gw
            .parse_start_response(r#"{"id":"cs_test_a1","object":"checkout.session","url":null}"#)
            .is_err());
        assert!(gw.parse_start_response("<html>bad gateway</html>").is_err());
    }

    #[test]
    fn a_paid_checkout_is_a_success() {
        let body = event("checkout.session.completed", session("paid"));
        let e = deliver(&body, 1_000, 1_010).unwrap();
        assert_eq!(
            e,
            GatewayEvent {
                event_id: "evt_test_1".into(),
                payment_id: Uuid::parse_str(PAYMENT_ID).unwrap(),
                outcome: Outcome::Succeeded,
                gateway_ref: Some("cs_test_a1b2c3".into()),
            }
        );
    }

    /// A fixed vector computed outside this code (Python's `hmac`, SHA-256, secret
    /// `whsec_test_secret`), so the signing scheme is not only checked against itself.
    /// Stripe's documented example header cannot serve: its secret and payload are not published.
    #[test]
    fn an_independently_computed_signature_is_accepted() {
        let body = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_a1b2c3","object":"checkout.session","client_reference_id":"6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11","payment_status":"paid","metadata":{"payment_id":"6f1f9c2e-8f3a-4a55-9d1e-3f2b7c9a0e11","number":"PAY-000042"}}}}"#;
        let value =
            "t=1492774577,v1=64400670ce98692ebf4ce4858fbdbc4fa43943a19705c9236d5af676ca50f669";
        assert_eq!(
            sign(SECRET, 1492774577, body.as_bytes()),
            "64400670ce98692ebf4ce4858fbdbc4fa43943a19705c9236d5af676ca50f669"
        );
        let e = gw()
            .verify_webhook(&headers(value), body.as_bytes(), 1492774577 + 60)
            .unwrap();
        assert_eq!(e.event_id, "evt_1NG8Du2eZvKYlo2CUI79vXWy");
        assert_eq!(e.outcome, Outcome::Succeeded);
    }

    #[test]
    fn stripes_documented_header_parses_and_v0_is_ignored() {
        // The example from Stripe's "Verify webhook signatures" page, with spaces as shown there.
        let value = "t=1492774577, v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd, v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";
        assert_eq!(
            parse_signature_header(value),
            Ok((
                1492774577,
                vec!["5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"]
            ))
        );
        // Well formed, but not signed with our secret.
        assert_eq!(
            gw().verify_webhook(&headers(value), b"{}", 1492774577),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn any_matching_v1_is_enough_while_a_secret_is_rolled() {
        let body = event("checkout.session.completed", session("paid"));
        let value = format!(
            "t=1000,v1={},v1={},v0=00",
            sign("whsec_old_secret", 1_000, &body),
            sign(SECRET, 1_000, &body)
        );
        let e = gw().verify_webhook(&headers(&value), &body, 1_000).unwrap();
        assert_eq!(e.outcome, Outcome::Succeeded);
    }

    #[test]
    fn tampering_another_secret_or_an_old_signature_is_refused() {
        let body = event("checkout.session.expired", session("unpaid"));
        let value = format!("t=1000,v1={}", sign(SECRET, 1_000, &body));
        let forged = event("checkout.session.completed", session("paid"));
        assert_eq!(
            gw().verify_webhook(&headers(&value), &forged, 1_000),
            Err(WebhookError::BadSignature)
        );
        // The timestamp is signed too: moving it breaks the signature.
        let moved = value.replacen("t=1000", "t=2000", 1);
        assert_eq!(
            gw().verify_webhook(&headers(&moved), &body, 2_000),
            Err(WebhookError::BadSignature)
        );
        let other = format!("t=1000,v1={}", sign("whsec_other", 1_000, &body));
        assert_eq!(
            gw().verify_webhook(&headers(&other), &body, 1_000),
            Err(WebhookError::BadSignature)
        );
        assert!(deliver(&body, 1_000, 1_000 + DEFAULT_TOLERANCE_SECS).is_ok());
        assert_eq!(
            deliver(&body, 1_000, 1_000 + DEFAULT_TOLERANCE_SECS + 1),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            deliver(&body, 1_000, 1_000 - DEFAULT_TOLERANCE_SECS - 1),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            gw().verify_webhook(&http::HeaderMap::new(), &body, 1_000),
            Err(WebhookError::MissingSignature)
        );
    }

    #[test]
    fn a_header_without_timestamp_or_v1_is_malformed() {
        for value in [
            "v1=abc",
            "t=1000",
            "t=1000,v0=abc",
            "t=soon,v1=abc",
            "t=1000,v1",
        ] {
            assert!(
                matches!(
                    gw().verify_webhook(&headers(value), b"{}", 1_000),
                    Err(WebhookError::Malformed(_))
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn an_unpaid_completed_checkout_waits_for_its_async_payment() {
        let body = event("checkout.session.completed", session("unpaid"));
        assert!(matches!(
            deliver(&body, 1_000, 1_000),
            Err(WebhookError::Ignored(_))
        ));
        let body = event("checkout.session.async_payment_succeeded", session("paid"));
        assert_eq!(
            deliver(&body, 1_000, 1_000).unwrap().outcome,
            Outcome::Succeeded
        );
        let body = event("checkout.session.async_payment_failed", session("unpaid"));
        assert_eq!(
            deliver(&body, 1_000, 1_000).unwrap().outcome,
            Outcome::Failed {
                reason: "The payment failed at Stripe.".into()
            }
        );
    }

    #[test]
    fn an_expired_checkout_is_a_failure() {
        let body = event("checkout.session.expired", session("unpaid"));
        let e = deliver(&body, 1_000, 1_000).unwrap();
        assert_eq!(
            e.outcome,
            Outcome::Failed {
                reason: "The Stripe checkout expired before payment.".into()
            }
        );
        assert_eq!(e.gateway_ref.as_deref(), Some("cs_test_a1b2c3"));
    }

    #[test]
    fn other_event_types_are_ignored() {
        let body = event(
            "payment_intent.succeeded",
            json!({ "id": "pi_1", "object": "payment_intent" }),
        );
        assert_eq!(
            deliver(&body, 1_000, 1_000),
            Err(WebhookError::Ignored("payment_intent.succeeded".into()))
        );
    }

    #[test]
    fn the_payment_id_must_be_a_uuid() {
        let mut object = session("paid");
        object["client_reference_id"] = json!("PAY-000042");
        let body = event("checkout.session.completed", object);
        assert!(matches!(
            deliver(&body, 1_000, 1_000),
            Err(WebhookError::Malformed(_))
        ));
        // Without client_reference_id the metadata names the payment.
        let mut object = session("paid");
        object["client_reference_id"] = json!(null);
        let body = event("checkout.session.completed", object);
        assert_eq!(
            deliver(&body, 1_000, 1_000).unwrap().payment_id,
            Uuid::parse_str(PAYMENT_ID).unwrap()
        );
    }
}
