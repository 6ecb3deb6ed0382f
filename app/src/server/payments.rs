//! Payment gateways: one trait, the built-in sandbox (the default) and a Stripe adapter.
//! A gateway starts a payment (sends the payer somewhere) and turns a webhook delivery into a
//! verified event; what the platform does with the event lives in `services::payments`.

pub mod sandbox;
pub mod stripe;

use rust_decimal::Decimal;
use uuid::Uuid;

/// What the platform asks a gateway to collect.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentIntent<'a> {
    pub payment_id: Uuid,
    /// The public number, e.g. PAY-000042.
    pub number: &'a str,
    /// Money with 2 decimals in `currency`.
    pub amount: Decimal,
    /// ISO 4217 code, upper case (VND, USD, …).
    pub currency: &'a str,
    pub description: &'a str,
    /// Where the payer lands after paying, and after giving up.
    pub return_url: String,
    pub cancel_url: String,
}

/// An HTTP request to the gateway's API, built but not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// `application/x-www-form-urlencoded` fields, in order.
    pub form: Vec<(String, String)>,
}

impl OutboundRequest {
    /// The form body exactly as it is sent.
    pub fn body(&self) -> String {
        self.form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// How a payment starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    /// Send the payer's browser here.
    Redirect(String),
    /// Call the gateway first; `parse_start_response` turns its answer into the redirect.
    Call(OutboundRequest),
}

/// What a verified webhook says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayEvent {
    /// The gateway's id of this delivery (a replay carries the same id).
    pub event_id: String,
    pub payment_id: Uuid,
    pub outcome: Outcome,
    /// The gateway's own reference for the payment, when it has one.
    pub gateway_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no signature header")]
    MissingSignature,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the signature's time is outside the tolerance")]
    Stale,
    #[error("malformed: {0}")]
    Malformed(String),
    /// Verified, but the platform could not apply it now (nothing was written): deliver again.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A genuine event of a kind the platform does not act on.
    #[error("ignored: {0}")]
    Ignored(String),
}

pub trait PaymentGateway: Send + Sync {
    /// The name in URLs and records: `sandbox`, `stripe`.
    fn name(&self) -> &'static str;
    fn start(&self, intent: &PaymentIntent<'_>) -> Start;
    /// The gateway's reference and the payer's redirect, from the answer to `Start::Call`.
    fn parse_start_response(&self, body: &str) -> Result<(String, String), String>;
    /// Checks a webhook delivery's signature and reads it; `now` is the Unix time in seconds.
    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<GatewayEvent, WebhookError>;
}

/// HMAC-SHA256 of `message` under `key`, as lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Compares a hex signature with the expected one in constant time.
pub fn signature_matches(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.verify_slice(&given).is_ok()
}
