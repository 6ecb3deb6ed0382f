//! The header: brand, the links the signed-in role has, the account menu.

use crate::api::auth::Logout;
use crate::api::User;
use crate::components::auth::Auth;
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::components::A;

/// Links per role. Only screens that exist are listed.
fn links(role: Role) -> &'static [(&'static str, &'static str)] {
    match role {
        Role::Admin => &[
            ("/", "Home"),
            ("/admin/users", "Users"),
            ("/admin/methodology", "Methodology"),
            ("/admin/audit", "Audit trail"),
            ("/cva", "Requests"),
            ("/admin/withdrawals", "Withdrawals"),
            ("/admin/settings", "Fees"),
        ],
        Role::EvOwner => &[
            ("/", "Home"),
            ("/dashboard", "Dashboard"),
            ("/trips", "Trips"),
            ("/charging", "Charging"),
            ("/credits", "Credits"),
            ("/wallet", "Wallet"),
            ("/sell", "Sell"),
            ("/auctions", "Auctions"),
            ("/money", "Money"),
            ("/vehicles", "Vehicles"),
            ("/import", "Import data"),
        ],
        Role::Cva => &[
            ("/", "Home"),
            ("/cva", "Review queue"),
            ("/cva/report", "Issuance report"),
        ],
        Role::Buyer => &[
            ("/", "Home"),
            ("/market", "Marketplace"),
            ("/auctions", "Auctions"),
            ("/orders", "Orders"),
            ("/wallet", "Credits"),
            ("/money", "Money"),
        ],
    }
}

#[component]
pub fn Header() -> impl IntoView {
    let auth = Auth::get();
    view! {
        <header class="site-header">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"⚡"</span>
                "EV Carbon Exchange"
            </a>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match auth.user.await {
                        Ok(Some(user)) => view! { <UserNav user /> }.into_any(),
                        _ => view! {
                            <nav class="nav" aria-label="Account">
                                <a href="/market">"Marketplace"</a>
                                <a href="/auctions">"Auctions"</a>
                                <a href="/login">"Sign in"</a>
                                <a class="button small" href="/signup">"Create account"</a>
                            </nav>
                        }.into_any(),
                    }
                })}
            </Transition>
        </header>
    }
}

#[component]
fn UserNav(user: User) -> impl IntoView {
    let auth = Auth::get();
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if logout.version().get() > 0 {
            auth.refresh();
        }
    });
    view! {
        <nav class="nav" aria-label="Main">
            {links(user.role).iter().map(|(href, label)| view! { <A href=*href exact=true>{*label}</A> }).collect_view()}
        </nav>
        <div class="account">
            <a href="/profile" class="account-name" title="Your profile">
                {user.full_name.clone()}
                <span class="role-badge">{user.role.label()}</span>
            </a>
            <ActionForm action=logout attr:class="inline">
                <button type="submit" class="link-button">"Sign out"</button>
            </ActionForm>
        </div>
    }
}
