//! Sign-up for EV owners and buyers.

use crate::api::auth::Register;
use crate::components::auth::Auth;
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use crate::domain::user::Password;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SignUpPage() -> impl IntoView {
    let auth = Auth::get();
    let register = ServerAction::<Register>::new();
    let error = error_of(*register);
    let done = succeeded(*register);
    Effect::new(move |_| {
        if done.get() {
            auth.refresh();
        }
    });
    let role_error = move || error.get().and_then(|e| e.field("role"));
    let password_hint = format!(
        "At least {} characters. A few unrelated words work well.",
        Password::MIN_CHARS
    );

    view! {
        <Title text="Create an account · EV Carbon Exchange" />
        <section class="card auth-card wide">
            <h1>"Create an account"</h1>
            <ActionForm action=register>
                <FormError error />
                <fieldset class="role-choice" aria-describedby="role-error">
                    <legend>"I am"</legend>
                    <label class="choice">
                        <input type="radio" name="role" value="ev_owner" checked=true />
                        <span><strong>"An EV owner"</strong>" — I drive electric and want to earn credits."</span>
                    </label>
                    <label class="choice">
                        <input type="radio" name="role" value="buyer" />
                        <span><strong>"A buyer"</strong>" — I want to buy and retire credits."</span>
                    </label>
                    <p class="field-error" id="role-error">{role_error}</p>
                </fieldset>
                <Field label="Full name" name="full_name" error autocomplete="name" />
                <Field label="E-mail" name="email" error autocomplete="email" inputmode="email" />
                <Field label="Phone" name="phone" kind="tel" error autocomplete="tel" hint="With country code, e.g. +84 90 123 4567." />
                <Field label="Password" name="password" kind="password" error autocomplete="new-password" hint=password_hint />
                <Field label="Repeat the password" name="password_confirm" kind="password" error autocomplete="new-password" />
                <Submit action=*register label="Create account" busy="Creating your account…" />
            </ActionForm>
            <p>"Already have an account? " <a href="/login">"Sign in"</a></p>
        </section>
    }
}
