//! The verification queue: filter by status, sort by age, risk or size.

use crate::api::credits::review_queue;
use crate::components::auth::{urlencode, RequireRole};
use crate::components::errors::ErrorPanel;
use crate::components::paging::Pager;
use crate::components::request::RequestTable;
use crate::domain::user::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn QueuePage() -> impl IntoView {
    view! {
        <Title text="Review queue · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Cva, Role::Admin]>
            <Queue />
        </RequireRole>
    }
}

#[component]
fn Queue() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let list = Resource::new(
        move || (q("status"), q("sort"), q("page")),
        |(status, sort, page)| review_queue(Some(status), Some(sort), Some(page)),
    );
    let option = move |name: &'static str, value: &'static str, label: &'static str| {
        let selected = q(name) == value;
        view! { <option value=value selected=selected>{label}</option> }
    };
    view! {
        <h1>"Review queue"</h1>
        <form method="get" action="/cva" class="filters" role="search">
            <div class="field">
                <label for="queue-status">"Status"</label>
                <select id="queue-status" name="status">
                    {option("status", "pending", "Pending")}
                    {option("status", "approved", "Approved")}
                    {option("status", "rejected", "Rejected")}
                    {option("status", "cancelled", "Cancelled")}
                    {option("status", "all", "All")}
                </select>
            </div>
            <div class="field">
                <label for="queue-sort">"Sort"</label>
                <select id="queue-sort" name="sort">
                    {option("sort", "oldest", "Oldest first")}
                    {option("sort", "newest", "Newest first")}
                    {option("sort", "risk", "Highest risk first")}
                    {option("sort", "size", "Largest first")}
                </select>
            </div>
            <button type="submit" class="button">"Show"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(l) if l.total == 0 => view! { <p class="notice">"Nothing here: no request matches."</p> }.into_any(),
                    Ok(l) => {
                        let (page, pages) = (l.page, l.pages);
                        let link = move |p: i64| format!(
                            "/cva?status={}&sort={}&page={p}",
                            urlencode(&q("status")),
                            urlencode(&q("sort"))
                        );
                        view! {
                            <p class="muted" role="status" data-testid="queue-count">{format!("{} request{}", l.total, if l.total == 1 { "" } else { "s" })}</p>
                            <RequestTable lines=l.requests link=|l| format!("/cva/requests/{}", l.id) show_owner=true />
                            <Pager page=page pages=pages href=link />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
