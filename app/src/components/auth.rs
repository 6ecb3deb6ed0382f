//! Who is signed in, as seen by the views, and the guard that puts pages behind a role.

use crate::api::auth::current_user;
use crate::api::User;
use crate::components::errors::{ErrorPanel, Forbidden};
use crate::domain::user::Role;
use crate::error::AppError;
use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_location;

/// The signed-in account, refetched whenever something changes who that is.
#[derive(Clone, Copy)]
pub struct Auth {
    pub user: Resource<Result<Option<User>, AppError>>,
    epoch: RwSignal<u32>,
}

impl Auth {
    pub fn provide() {
        let epoch = RwSignal::new(0);
        let user = Resource::new(move || epoch.get(), |_| current_user());
        provide_context(Auth { user, epoch });
    }

    pub fn get() -> Auth {
        expect_context::<Auth>()
    }

    /// Changes whenever the signed-in account may have changed (for resources that follow it).
    pub fn epoch(&self) -> u32 {
        self.epoch.get()
    }

    /// Call after sign-in, sign-out or a profile change.
    pub fn refresh(&self) {
        self.epoch.update(|n| *n += 1);
    }
}

/// Renders `children` for a signed-in account with one of `roles`; a visitor is sent to the
/// login page (and back afterwards); any other account gets the 403 page. The guard decides
/// once per visit: a profile change refreshing the header does not rebuild the page under it.
///
/// The page is built inside this Suspend, which the server may run more than once (how often
/// depends on when `caller` arrives). Each run gives the page's resources and Suspense
/// boundaries fresh hydration ids, while the browser builds the page once. That is harmless
/// only while the page creates all of them in its top component: every run then repeats the
/// same sequence, and the browser's first copy matches the server's. A resource or Suspense
/// created inside one of the page's own Suspends lands after a timing-dependent number of
/// repeats, so the browser reads another resource's data in its place and hydration fails.
#[component]
pub fn RequireRole(roles: &'static [Role], children: ChildrenFn) -> impl IntoView {
    let caller = Resource::new(|| (), |_| current_user());
    let location = use_location();
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match caller.await {
                    Ok(Some(user)) if roles.contains(&user.role) => children.read_value()().into_any(),
                    Ok(Some(_)) => view! { <Forbidden /> }.into_any(),
                    Ok(None) => {
                        let here = format!("{}{}", location.pathname.get_untracked(), location.search.get_untracked());
                        let target = format!("/login?next={}", urlencode(&here));
                        view! { <Redirect path=target /> }.into_any()
                    }
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Percent-encodes a value for a query string.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
