//! The built-in sandbox gateway: a hosted payment page of its own (`/sandbox/pay/{id}`, served
//! by the server crate) where the payer chooses success, failure or timeout, and a webhook back
//! to the platform signed like real gateways sign theirs:
//! `X-Sandbox-Signature: t={unix seconds},v1={hex HMAC-SHA256(secret, "{t}.{body}")}`.

use super::{
    signature_matches, GatewayEvent, Outcome, PaymentGateway, PaymentIntent, Start, WebhookError,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const SIGNATURE_HEADER: &str = "x-sandbox-signature";
/// A delivery older (or newer) than this is refused, so a captured one cannot be replayed later.
pub const TOLERANCE_SECS: i64 = 300;

/// The webhook's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub event_id: String,
    pub payment_id: Uuid,
    /// `succeeded` or `failed`.
    pub status: String,
    #[serde(default)]
    pub reason: String,
}

pub struct Sandbox {
    secret: Vec<u8>,
}

impl Sandbox {
    pub fn new(secret: impl Into<Vec<u8>>) -> Sandbox {
        Sandbox {
            secret: secret.into(),
        }
    }

    /// The signature header for `body` sent at `now`.
    pub fn sign(&self, body: &[u8], now: i64) -> String {
        let mut message = format!("{now}.").into_bytes();
        message.extend_from_slice(body);
        format!(
            "t={now},v1={}",
            super::hmac_sha256_hex(&self.secret, &message)
        )
    }

    /// A delivery's body and signature, as the hosted page sends it.
    pub fn delivery(&self, delivery: &Delivery, now: i64) -> (Vec<u8>, String) {
        let body = serde_json::to_vec(delivery).expect("a delivery serialises");
        let signature = self.sign(&body, now);
        (body, signature)
    }
}

/// Reads `t=…,v1=…` (several v1 values allowed, as when a secret is being rolled).
pub fn parse_signature_header(value: &str) -> Option<(i64, Vec<&str>)> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in value.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "t" => t = v.parse::<i64>().ok(),
            "v1" => v1.push(v),
            _ => {}
        }
    }
    Some((t?, v1))
}

impl PaymentGateway for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn start(&self, intent: &PaymentIntent<'_>) -> Start {
        Start::Redirect(format!("/sandbox/pay/{}", intent.payment_id))
    }

    fn parse_start_response(&self, _body: &str) -> Result<(String, String), String> {
        Err("the sandbox starts without a call".into())
    }

    fn verify_webhook(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<GatewayEvent, WebhookError> {
        let header = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::MissingSignature)?;
        let (t, signatures) = parse_signature_header(header)
            .ok_or_else(|| WebhookError::Malformed("signature header".into()))?;
        let mut message = format!("{t}.").into_bytes();
        message.extend_from_slice(body);
        if !signatures
            .iter()
            .any(|s| signature_matches(&self.secret, &message, s))
        {
            return Err(WebhookError::BadSignature);
        }
        // `t` is whatever the sender wrote: a difference of two i64 may overflow.
        if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
            return Err(WebhookError::Stale);
        }
        let d: Delivery =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let outcome = match d.status.as_str() {
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed {
                reason: if d.reason.is_empty() {
                    "The payment was declined.".into()
                } else {
                    d.reason
                },
            },
            other => return Err(WebhookError::Ignored(format!("status {other}"))),
        };
        Ok(GatewayEvent {
            event_id: d.event_id,
            payment_id: d.payment_id,
            outcome,
            gateway_ref: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(status: &str) -> Delivery {
        Delivery {
            event_id: "evt_1".into(),
            payment_id: Uuid::nil(),
            status: status.into(),
            reason: String::new(),
        }
    }

    fn headers(signature: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        h
    }

    #[test]
    fn a_signed_delivery_is_read() {
        let gw = Sandbox::new("secret");
        let (body, sig) = gw.delivery(&delivery("succeeded"), 1_000);
        let event = gw.verify_webhook(&headers(&sig), &body, 1_010).unwrap();
        assert_eq!(event.outcome, Outcome::Succeeded);
        assert_eq!(event.event_id, "evt_1");
    }

    #[test]
    fn a_failure_carries_a_reason() {
        let gw = Sandbox::new("secret");
        let (body, sig) = gw.delivery(&delivery("failed"), 1_000);
        let event = gw.verify_webhook(&headers(&sig), &body, 1_000).unwrap();
        assert!(matches!(event.outcome, Outcome::Failed { .. }));
    }

    #[test]
    fn tampering_another_secret_or_an_old_signature_is_refused() {
        let gw = Sandbox::new("secret");
        let (body, sig) = gw.delivery(&delivery("failed"), 1_000);
        let mut forged = body.clone();
        let at = forged.windows(6).position(|w| w == b"failed").unwrap();
        forged.splice(at..at + 6, b"succeeded".iter().copied());
        assert_eq!(
            gw.verify_webhook(&headers(&sig), &forged, 1_000),
            Err(WebhookError::BadSignature)
        );
        let other = Sandbox::new("other secret");
        let (_, other_sig) = other.delivery(&delivery("failed"), 1_000);
        assert_eq!(
            gw.verify_webhook(&headers(&other_sig), &body, 1_000),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            gw.verify_webhook(&headers(&sig), &body, 1_000 + TOLERANCE_SECS + 1),
            Err(WebhookError::Stale)
        );
        assert_eq!(
            gw.verify_webhook(&http::HeaderMap::new(), &body, 1_000),
            Err(WebhookError::MissingSignature)
        );
        assert_eq!(
            gw.verify_webhook(&headers("v1=abc"), &body, 1_000),
            Err(WebhookError::Malformed("signature header".into()))
        );
    }
}
