//! Forgotten password: ask for a link by e-mail, then choose a new password with it.

use crate::api::auth::{RequestPasswordReset, ResetPassword};
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let request = ServerAction::<RequestPasswordReset>::new();
    let error = error_of(*request);
    let query = use_query_map();
    let sent =
        Signal::derive(move || succeeded(*request).get() || query.read().get("sent").is_some());
    view! {
        <Title text="Forgot password · EV Carbon Exchange" />
        <section class="card auth-card">
            <h1>"Reset your password"</h1>
            <Show
                when=move || sent.get()
                fallback=move || view! {
                    <p>"Enter the e-mail address of your account. We will send you a link to choose a new password."</p>
                    <ActionForm action=request>
                        <FormError error />
                        <Field label="E-mail" name="email" error autocomplete="email" inputmode="email" />
                        <Submit action=*request label="Send the link" busy="Sending…" />
                    </ActionForm>
                }
            >
                <p class="notice" role="status">
                    "If an account uses that address, a link is on its way. It works once, for one hour."
                </p>
            </Show>
            <p><a href="/login">"Back to sign in"</a></p>
        </section>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let reset = ServerAction::<ResetPassword>::new();
    let error = error_of(*reset);
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    view! {
        <Title text="Choose a new password · EV Carbon Exchange" />
        <section class="card auth-card">
            <h1>"Choose a new password"</h1>
            <Show
                when=move || !token().is_empty()
                fallback=|| view! {
                    <p class="form-error" role="alert">"This page needs the link from your e-mail. "
                        <a href="/forgot-password">"Ask for a new link"</a>"."</p>
                }
            >
                <ActionForm action=reset>
                    <FormError error />
                    <input type="hidden" name="token" value=token />
                    <Field label="New password" name="new_password" kind="password" error autocomplete="new-password" />
                    <Field label="Repeat the new password" name="new_password_confirm" kind="password" error autocomplete="new-password" />
                    <Submit action=*reset label="Set the password" busy="Saving…" />
                </ActionForm>
            </Show>
        </section>
    }
}
