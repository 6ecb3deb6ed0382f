//! Downloads that are files rather than server-function answers: certificate PDFs (public)
//! and invoice PDFs (for the order's buyer, its seller and admins).

use crate::startup::ServerState;
use app::error::AppError;
use app::server::services::{orders, wallet};
use app::server::session::{self, Caller};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

/// `GET /certificates/{number}.pdf`: public, like the verify page it links to.
pub async fn certificate_pdf(State(s): State<ServerState>, Path(file): Path<String>) -> Response {
    let Some(number) = file.strip_suffix(".pdf") else {
        return (
            StatusCode::NOT_FOUND,
            "Certificates are served as {number}.pdf",
        )
            .into_response();
    };
    let made = async {
        let c = wallet::certificate(&s.app.pool, number).await?;
        let bytes = wallet::certificate_pdf(&c, &s.app.config.public_url)?;
        Ok::<_, AppError>((c.number, bytes))
    }
    .await;
    match made {
        Ok((number, bytes)) => {
            let mut res = bytes.into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{number}.pdf\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            res
        }
        Err(AppError::NotFound { .. }) => {
            (StatusCode::NOT_FOUND, "No certificate has this number.").into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `GET /invoices/{order number}.pdf`: the invoice of a completed order, for its buyer, its
/// seller or an admin.
pub async fn invoice_pdf(
    State(s): State<ServerState>,
    session: Session,
    Path(file): Path<String>,
) -> Response {
    let Some(number) = file.strip_suffix(".pdf") else {
        return (StatusCode::NOT_FOUND, "Invoices are served as {order}.pdf").into_response();
    };
    let made = async {
        let row = session::current(&s.app, &session)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let order = orders::get(&s.app, &Caller::from(&row), number).await?;
        let bytes = orders::invoice_pdf(&order)?;
        Ok::<_, AppError>((order.invoice_number.unwrap_or_default(), bytes))
    }
    .await;
    match made {
        Ok((invoice, bytes)) => {
            let mut res = bytes.into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{invoice}.pdf\""))
            {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            res
        }
        Err(e) => (
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        )
            .into_response(),
    }
}
