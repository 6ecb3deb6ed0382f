//! Sign-up for EV owners and buyers, in two steps: the form asks for the account, then the link
//! mailed to the address opens the page where the password is chosen and the account created.
//! The first answer is the same whether or not the address has an account.

use crate::api::auth::{sign_up_link, FinishSignUp, Register};
use crate::components::auth::Auth;
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use crate::domain::user::Password;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SignUpPage() -> impl IntoView {
    let register = ServerAction::<Register>::new();
    let error = error_of(*register);
    let query = use_query_map();
    let sent =
        Signal::derive(move || succeeded(*register).get() || query.read().get("sent").is_some());
    let role_error = move || error.get().and_then(|e| e.field("role"));

    view! {
        <Title text="Create an account · EV Carbon Exchange" />
        <section class="card auth-card wide">
            <h1>"Create an account"</h1>
            <Show
                when=move || sent.get()
                fallback=move || view! {
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
                        <Field label="E-mail" name="email" error autocomplete="email" inputmode="email" hint="We send a link there to choose your password." />
                        <Field label="Phone" name="phone" kind="tel" error autocomplete="tel" hint="With country code, e.g. +84 90 123 4567." />
                        <Submit action=*register label="Create account" busy="Sending the link…" />
                    </ActionForm>
                }
            >
                <div class="notice" role="status" data-testid="sign-up-sent">
                    <p><strong>"Check your e-mail."</strong></p>
                    <p>"We sent a message to the address you gave. Open its link within 24 hours to choose your password and finish creating your account."</p>
                    <p>"Nothing there after a few minutes? Look in the spam folder, or "<a href="/signup">"try again"</a>"."</p>
                </div>
            </Show>
            <p>"Already have an account? " <a href="/login">"Sign in"</a></p>
        </section>
    }
}

/// The page the e-mailed link opens: choose the password, and the account exists.
#[component]
pub fn FinishSignUpPage() -> impl IntoView {
    let auth = Auth::get();
    let finish = ServerAction::<FinishSignUp>::new();
    let error = error_of(*finish);
    let done = succeeded(*finish);
    Effect::new(move |_| {
        if done.get() {
            auth.refresh();
        }
    });
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let link = Resource::new(token, sign_up_link);
    let password_hint = format!(
        "At least {} characters. A few unrelated words work well.",
        Password::MIN_CHARS
    );

    view! {
        <Title text="Finish creating your account · EV Carbon Exchange" />
        <section class="card auth-card">
            <h1>"Finish creating your account"</h1>
            <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
                {move || {
                    let password_hint = password_hint.clone();
                    Suspend::new(async move {
                        match link.await {
                            Err(error) => view! {
                                <p class="form-error" role="alert">{error.to_string()}</p>
                                <p><a class="button" href="/signup">"Sign up again"</a></p>
                            }.into_any(),
                            Ok(pending) => view! {
                                <dl class="facts">
                                    <dt>"E-mail"</dt><dd data-testid="sign-up-email">{pending.email}</dd>
                                    <dt>"Name"</dt><dd>{pending.full_name}</dd>
                                    <dt>"Account"</dt><dd>{pending.role.label()}</dd>
                                </dl>
                                <ActionForm action=finish>
                                    <FormError error />
                                    <input type="hidden" name="token" value=token />
                                    <Field label="Password" name="password" kind="password" error autocomplete="new-password" hint=password_hint />
                                    <Field label="Repeat the password" name="password_confirm" kind="password" error autocomplete="new-password" />
                                    <Submit action=*finish label="Create my account" busy="Creating your account…" />
                                </ActionForm>
                            }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}
