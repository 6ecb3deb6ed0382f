//! Sign-in, with the demo accounts listed in development mode.

use crate::api::auth::{demo_accounts, Login};
use crate::components::auth::Auth;
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = Auth::get();
    let login = ServerAction::<Login>::new();
    let error = error_of(*login);
    let done = succeeded(*login);
    Effect::new(move |_| {
        if done.get() {
            auth.refresh();
        }
    });
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let reset_done = move || query.read().get("reset").is_some();
    let demo = Resource::new(|| (), |_| demo_accounts());

    view! {
        <Title text="Sign in · EV Carbon Exchange" />
        <div class="auth-layout">
            <section class="card auth-card">
                <h1>"Sign in"</h1>
                <Show when=reset_done>
                    <p class="notice" role="status">"Your new password is set. Sign in with it."</p>
                </Show>
                <ActionForm action=login>
                    <FormError error />
                    <Field label="E-mail" name="email" error autocomplete="username" inputmode="email" />
                    <Field label="Password" name="password" kind="password" error autocomplete="current-password" />
                    <input type="hidden" name="next" value=next />
                    <Submit action=*login label="Sign in" busy="Signing in…" />
                </ActionForm>
                <p><a href="/forgot-password">"Forgot your password?"</a></p>
                <p>"New here? " <a href="/signup">"Create an account"</a></p>
            </section>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let accounts = demo.await.unwrap_or_default();
                    (!accounts.is_empty()).then(|| view! {
                        <aside class="card demo-accounts" aria-labelledby="demo-heading">
                            <h2 id="demo-heading">"Demo accounts"</h2>
                            <p class="muted">"Shown in development mode only."</p>
                            <table>
                                <thead><tr><th>"Role"</th><th>"E-mail"</th><th>"Password"</th></tr></thead>
                                <tbody>
                                    {accounts.into_iter().map(|a| view! {
                                        <tr>
                                            <td>{a.role.label()}</td>
                                            <td><code>{a.email}</code></td>
                                            <td><code>{a.password}</code></td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </aside>
                    })
                })}
            </Suspense>
        </div>
    }
}
