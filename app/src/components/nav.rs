//! The header: brand, the links the signed-in role has, the account menu.

use crate::api::auth::Logout;
use crate::api::notifications::{bell, InboxLive};
use crate::api::User;
use crate::components::auth::Auth;
use crate::components::live::{follow_inbox, InboxFeed};
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
            ("/admin/transactions", "Transactions"),
            ("/admin/disputes", "Disputes"),
            ("/admin/money", "Money"),
            ("/admin/withdrawals", "Withdrawals"),
            ("/reports", "Reports"),
            ("/cva", "Requests"),
            ("/admin/methodology", "Methodology"),
            ("/admin/settings", "Settings"),
            ("/admin/audit", "Audit trail"),
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
            ("/reports", "Reports"),
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
            ("/market/trends", "Trends"),
            ("/orders", "Orders"),
            ("/wallet", "Credits"),
            ("/money", "Money"),
            ("/reports", "Reports"),
        ],
    }
}

#[component]
pub fn Header() -> impl IntoView {
    let auth = Auth::get();
    // The bell of whoever is signed in (nothing for a visitor).
    let bell = Resource::new(
        move || auth.epoch(),
        move |_| async move {
            match auth.user.await {
                Ok(Some(_)) => bell().await.ok(),
                _ => None,
            }
        },
    );
    view! {
        <header class="site-header">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"⚡"</span>
                "EV Carbon Exchange"
            </a>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match auth.user.await {
                        Ok(Some(user)) => {
                            let bell = bell.await;
                            view! { <UserNav user bell /> }.into_any()
                        }
                        _ => view! {
                            <nav class="nav" aria-label="Account">
                                <a href="/market">"Marketplace"</a>
                                <a href="/auctions">"Auctions"</a>
                                <a href="/market/trends">"Trends"</a>
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
fn UserNav(user: User, bell: Option<InboxLive>) -> impl IntoView {
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
            {match bell {
                Some(first) => view! { <LiveBell first /> }.into_any(),
                None => view! { <a href="/notifications" class="bell" aria-label="Notifications"><BellIcon /></a> }.into_any(),
            }}
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

/// The bell: unread notifications, live. A notification that arrives while a page is open is
/// also shown once, politely, under the header.
#[component]
fn LiveBell(first: InboxLive) -> impl IntoView {
    // What was newest when the page loaded is not news.
    let known = first.latest.as_ref().map(|n| (n.id, n.created_at));
    follow_inbox(first);
    let feed = InboxFeed::get();
    let unread = move || feed.0.with(|i| i.as_ref().map_or(0, |i| i.unread));
    let dismissed = RwSignal::new(known);
    let fresh = move || {
        feed.0.with(|i| {
            i.as_ref()
                .and_then(|i| i.latest.clone())
                .filter(|n| !n.read && Some((n.id, n.created_at)) != dismissed.get())
        })
    };
    view! {
        <a href="/notifications" class="bell" data-testid="bell"
            aria-label=move || match unread() { 0 => "Notifications, none unread".to_owned(), 1 => "Notifications, 1 unread".to_owned(), n => format!("Notifications, {n} unread") }>
            <BellIcon />
            {move || (unread() > 0).then(|| view! { <span class="bell-count" data-testid="bell-count">{unread()}</span> })}
        </a>
        <div class="toast-region" role="status" aria-live="polite">
            {move || fresh().map(|n| {
                let stamp = (n.id, n.created_at);
                view! {
                    <div class="toast" data-testid="toast">
                        <a href="/notifications" class="toast-title">{n.title.clone()}</a>
                        <p>{n.body.clone()}</p>
                        <button type="button" class="link-button" on:click=move |_| dismissed.set(Some(stamp))>"Dismiss"</button>
                    </div>
                }
            })}
        </div>
    }
}

/// A bell drawn inline (no emoji font needed), hidden from screen readers: the link says it.
#[component]
fn BellIcon() -> impl IntoView {
    view! {
        <svg class="bell-icon" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">
            <path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z"/>
        </svg>
    }
}
