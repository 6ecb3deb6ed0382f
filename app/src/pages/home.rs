//! The home page: each role sees what it can do; a visitor is sent to sign in.

use crate::api::admin::account_counts;
use crate::api::User;
use crate::components::auth::Auth;
use crate::components::errors::ErrorPanel;
use crate::domain::user::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

#[component]
pub fn HomePage() -> impl IntoView {
    let auth = Auth::get();
    view! {
        <Title text="Home · EV Carbon Exchange" />
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match auth.user.await {
                    Ok(Some(user)) => view! { <RoleHome user /> }.into_any(),
                    Ok(None) => view! { <Redirect path="/login" /> }.into_any(),
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn RoleHome(user: User) -> impl IntoView {
    let first_name = user
        .full_name
        .split_whitespace()
        .last()
        .unwrap_or(&user.full_name)
        .to_owned();
    let (title, lead) = match user.role {
        Role::EvOwner => ("Your EV owner home", "Your electric driving avoids CO₂. Here you will turn it into verified carbon credits."),
        Role::Buyer => ("Your buyer home", "Buy verified carbon credits from electric-vehicle owners and retire them against your emissions."),
        Role::Cva => ("Your verifier home", "You check every credit issuance before a single credit exists."),
        Role::Admin => ("Platform administration", "Accounts, roles and access for the whole platform."),
    };
    view! {
        <section class="hero" data-role=user.role.as_str()>
            <p class="eyebrow">{user.role.label()}</p>
            <h1>{title}</h1>
            <p class="lead">"Welcome, " {first_name} ". " {lead}</p>
        </section>
        {match user.role {
            Role::Admin => view! { <AdminSummary /> }.into_any(),
            _ => view! {
                <section class="card">
                    <h2>"Your account"</h2>
                    <dl class="facts">
                        <dt>"Signed in as"</dt><dd>{user.email.clone()}</dd>
                        <dt>"Member since"</dt><dd>{user.created_at.format("%e %B %Y").to_string()}</dd>
                    </dl>
                    <p><a class="button secondary" href="/profile">"Edit your profile"</a></p>
                </section>
                {(user.role == Role::EvOwner).then(|| view! {
                    <section class="card">
                        <h2>"Your driving"</h2>
                        <p>"Register your cars, import their trips and charging sessions, and watch the CO₂ you avoid."</p>
                        <p class="actions">
                            <a class="button" href="/dashboard">"CO₂ dashboard"</a>" "
                            <a class="button secondary" href="/vehicles">"Vehicles"</a>" "
                            <a class="button secondary" href="/import">"Import data"</a>
                        </p>
                    </section>
                })}
            }.into_any(),
        }}
    }
}

#[component]
fn AdminSummary() -> impl IntoView {
    let counts = Resource::new(|| (), |_| account_counts());
    view! {
        <section class="card">
            <h2>"Accounts"</h2>
            <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match counts.await {
                        Err(error) => view! { <ErrorPanel error /> }.into_any(),
                        Ok(rows) => view! {
                            <table class="data">
                                <thead><tr><th scope="col">"Role"</th><th scope="col" class="num">"Active"</th><th scope="col" class="num">"Suspended"</th></tr></thead>
                                <tbody>
                                    {rows.into_iter().map(|c| view! {
                                        <tr>
                                            <th scope="row"><a href=format!("/admin/users?role={}", c.role.as_str())>{c.role.label()}</a></th>
                                            <td class="num">{c.active}</td>
                                            <td class="num">{c.suspended}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    }
                })}
            </Suspense>
            <p><a class="button" href="/admin/users">"Manage users"</a></p>
        </section>
    }
}
