//! Form pieces that show each field's error next to it and the form's error on top.
//! The same markup works before hydration: a plain form post comes back with the error.

use crate::domain::market::{format_money, parse_money, parse_tonnes, tonnes};
use crate::error::AppError;
use leptos::prelude::*;
use rust_decimal::Decimal;

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
    /// How what is typed reads, as it is typed (see `reads_as_money`): Ok is the value read,
    /// Err why it cannot be read. Nothing is shown for an empty input.
    #[prop(optional)]
    reads: Option<Callback<String, Result<String, String>>>,
) -> impl IntoView {
    let id = id.map_or_else(|| format!("field-{name}"), str::to_owned);
    let message_id = format!("{id}-error");
    let reads_id = format!("{id}-reads");
    let message = move || error.get().and_then(|e| e.field(name));
    let (typed, set_typed) = signal(value.clone().unwrap_or_default());
    let reading = move || {
        let raw = typed.get();
        reads.filter(|_| !raw.trim().is_empty()).map(|r| r.run(raw))
    };
    let described = if reads.is_some() {
        format!("{reads_id} {message_id}")
    } else {
        message_id.clone()
    };
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
                on:input=move |ev| set_typed.set(event_target_value(&ev))
                aria-invalid=move || if message().is_some() { "true" } else { "false" }
                aria-describedby=described
            />
            {hint.map(|h| view! { <small class="hint">{h}</small> })}
            {reads.is_some().then(|| view! {
                <small class="hint reads" id=reads_id.clone() data-testid=reads_id.clone() aria-live="polite"
                    class:problem=move || matches!(reading(), Some(Err(_)))>
                    {move || reading().map(|r| r.unwrap_or_else(|e| e))}
                </small>
            })}
            <p class="field-error" id=message_id>{message}</p>
        </div>
    }
}

/// A `Field`'s live reading of an amount in `currency`: "Read as 215.000 ₫ per tonne." —
/// the same rule the server applies, so what is shown is what will be saved.
pub fn reads_as_money(
    currency: String,
    per: &'static str,
) -> Callback<String, Result<String, String>> {
    Callback::new(move |raw: String| {
        parse_money(&raw, &currency)
            .map(|d| format!("Read as {}{per}.", format_money(d, &currency)))
    })
}

/// A `Field`'s live reading of a quantity in tonnes: "Read as 0.010 t (10 kg)."
pub fn reads_as_tonnes() -> Callback<String, Result<String, String>> {
    Callback::new(move |raw: String| {
        parse_tonnes(&raw).map(|kg| format!("Read as {} ({kg} kg).", tonnes(kg)))
    })
}

/// A price far from the suggestion that the server asks to have confirmed
/// (`AppError::ConfirmPrice`).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceToConfirm {
    pub message: String,
    pub price_per_t: Decimal,
    /// The form as the server read it, with `confirm_price=true`.
    pub resubmit: Vec<(String, String)>,
}

/// The price an action's last answer asks to have confirmed, if any.
pub fn price_to_confirm(error: Signal<Option<AppError>>) -> Signal<Option<PriceToConfirm>> {
    Signal::derive(move || match error.get() {
        Some(AppError::ConfirmPrice {
            message,
            price_per_t,
            resubmit,
            ..
        }) => Some(PriceToConfirm {
            message,
            price_per_t,
            resubmit,
        }),
        _ => None,
    })
}

/// The warning and hidden fields of a "… anyway" form: put inside an `ActionForm` of the
/// same action, with a submit button that says what will happen. It posts exactly what the
/// server read, so it works the same before hydration (a plain form post gets only the error
/// back, never what was typed).
#[component]
pub fn ConfirmFields(confirm: PriceToConfirm) -> impl IntoView {
    view! {
        <p role="alert">{confirm.message}</p>
        {confirm.resubmit.into_iter().map(|(name, value)| view! {
            <input type="hidden" name=name value=value />
        }).collect_view()}
    }
}

/// The form-level error: what went wrong, in words, at the top of the form. A price to
/// confirm is left to the page's "… anyway" form (see `ConfirmFields`).
#[component]
pub fn FormError(error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error
            .get()
            .filter(|e| !matches!(e, AppError::ConfirmPrice { .. }))
            .map(|e| {
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
