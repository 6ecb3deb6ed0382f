//! Form pieces that show each field's error next to it and the form's error on top.
//! The same markup works before hydration: a plain form post comes back with the error.

use crate::error::AppError;
use leptos::prelude::*;

/// The error an action last ended with, if any.
pub fn error_of<I, O>(action: Action<I, Result<O, AppError>>) -> Signal<Option<AppError>>
where
    I: Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(Result::err))
}

/// Whether the action last ended well.
pub fn succeeded<I, O>(action: Action<I, Result<O, AppError>>) -> Signal<bool>
where
    I: Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || matches!(action.value().get(), Some(Ok(_))))
}

#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    error: Signal<Option<AppError>>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional, into)] value: Option<String>,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(optional, into)] hint: Option<String>,
    /// The input's id when two forms on one page share a field name.
    #[prop(optional)]
    id: Option<&'static str>,
) -> impl IntoView {
    let id = id.map_or_else(|| format!("field-{name}"), str::to_owned);
    let message_id = format!("{id}-error");
    let message = move || error.get().and_then(|e| e.field(name));
    view! {
        <div class="field" class:invalid=move || message().is_some()>
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                value=value
                autocomplete=autocomplete
                inputmode=inputmode
                aria-invalid=move || if message().is_some() { "true" } else { "false" }
                aria-describedby=message_id.clone()
            />
            {hint.map(|h| view! { <small class="hint">{h}</small> })}
            <p class="field-error" id=message_id>{message}</p>
        </div>
    }
}

/// The form-level error: what went wrong, in words, at the top of the form.
#[component]
pub fn FormError(error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <div class="form-error" role="alert">
                    {e.to_string()}
                </div>
            }
        })
    }
}

/// A submit button that says what is happening while the action runs.
#[component]
pub fn Submit<I, O>(
    action: Action<I, Result<O, AppError>>,
    label: &'static str,
    busy: &'static str,
    #[prop(optional)] class: &'static str,
) -> impl IntoView
where
    I: Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    let pending = action.pending();
    view! {
        <button type="submit" class=format!("button {class}") aria-busy=move || pending.get().to_string()>
            {move || if pending.get() { busy } else { label }}
        </button>
    }
}

/// Pages outside the app (the payment gateway's) need a full page load: a server function's
/// redirect only moves the app's own router. Call from an Effect when an action answers with
/// such an address; the current history entry is replaced, so Back returns to the form.
pub fn leave_for(url: &str) {
    if url.starts_with("/sandbox/") || url.starts_with("https://") || url.starts_with("http://") {
        let _ = window().location().replace(url);
    }
}
