//! The account's own profile: view and edit name and phone, change the password.

use crate::api::auth::{get_profile, ChangePassword, UpdateProfile};
use crate::api::ANY_ROLE;
use crate::components::auth::{Auth, RequireRole};
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ProfilePage() -> impl IntoView {
    view! {
        <Title text="Your profile · EV Carbon Exchange" />
        <RequireRole roles=ANY_ROLE>
            <Profile />
        </RequireRole>
    }
}

#[component]
fn Profile() -> impl IntoView {
    let auth = Auth::get();
    let update = ServerAction::<UpdateProfile>::new();
    let change = ServerAction::<ChangePassword>::new();
    let profile = Resource::new(move || update.version().get(), |_| get_profile());
    let update_error = error_of(*update);
    let change_error = error_of(*change);
    let updated = succeeded(*update);
    let changed = succeeded(*change);
    Effect::new(move |_| {
        if updated.get() {
            auth.refresh();
        }
    });

    view! {
        <h1>"Your profile"</h1>
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match profile.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(user) => view! {
                        <div class="grid two">
                            <section class="card">
                                <h2>"Account"</h2>
                                <dl class="facts">
                                    <dt>"E-mail"</dt><dd>{user.email.clone()}</dd>
                                    <dt>"Role"</dt><dd>{user.role.label()}</dd>
                                    <dt>"Member since"</dt><dd>{user.created_at.format("%e %B %Y").to_string()}</dd>
                                </dl>
                                <h2>"Details"</h2>
                                <Show when=move || updated.get()>
                                    <p class="notice" role="status">"Your details are saved."</p>
                                </Show>
                                <ActionForm action=update>
                                    <FormError error=update_error />
                                    <Field label="Full name" name="full_name" value=user.full_name.clone() error=update_error autocomplete="name" />
                                    <Field label="Phone" name="phone" kind="tel" value=user.phone.clone() error=update_error autocomplete="tel" />
                                    <Submit action=*update label="Save details" busy="Saving…" />
                                </ActionForm>
                            </section>
                            <section class="card">
                                <h2>"Change password"</h2>
                                <p class="muted">"Changing it signs you out everywhere else."</p>
                                <Show when=move || changed.get()>
                                    <p class="notice" role="status">"Your password is changed. Other sessions were signed out."</p>
                                </Show>
                                <ActionForm action=change>
                                    <FormError error=change_error />
                                    <Field label="Current password" name="current_password" kind="password" error=change_error autocomplete="current-password" />
                                    <Field label="New password" name="new_password" kind="password" error=change_error autocomplete="new-password" />
                                    <Field label="Repeat the new password" name="new_password_confirm" kind="password" error=change_error autocomplete="new-password" />
                                    <Submit action=*change label="Change password" busy="Changing…" />
                                </ActionForm>
                            </section>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}
