//! Error pages and panels: friendly words, a reference for support, the right HTTP status.

use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;

#[cfg(feature = "ssr")]
fn set_status(code: u16) {
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(
            http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_status(404);
    view! {
        <Title text="Page not found · EV Carbon Exchange" />
        <section class="error-page">
            <h1>"Page not found"</h1>
            <p>"There is no page at this address. It may have moved, or the link may be mistyped."</p>
            <p><a href="/">"Go to your home page"</a></p>
        </section>
    }
}

#[component]
pub fn Forbidden() -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_status(403);
    view! {
        <Title text="No access · EV Carbon Exchange" />
        <section class="error-page" data-status="403">
            <h1>"403 — No access"</h1>
            <p>"Your account’s role does not give access to this page."</p>
            <p><a href="/">"Go to your home page"</a></p>
        </section>
    }
}

/// An error that stopped a page or a panel from loading.
#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_status(error.status());
    let reference = match &error {
        AppError::Internal { reference } => Some(reference.clone()),
        _ => None,
    };
    view! {
        <section class="error-page" role="alert">
            <h1>"Something went wrong"</h1>
            <p>{error.to_string()}</p>
            {reference.map(|r| view! { <p class="muted">"If this keeps happening, tell support the reference " <code>{r}</code> "."</p> })}
            <p><a href="/">"Go to your home page"</a></p>
        </section>
    }
}
