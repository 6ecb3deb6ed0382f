//! Downloads that are files rather than server-function answers: certificate PDFs.

use crate::startup::ServerState;
use app::error::AppError;
use app::server::services::wallet;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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
