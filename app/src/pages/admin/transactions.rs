//! The transactions monitor: every order (stuck ones confirmed or cancelled here) and every
//! listing or auction (suspended or reinstated here), searchable, with the query in the URL.

use crate::api::operations::{
    monitor_listings, monitor_orders, ReinstateListing, ResolveOrder, SuspendListing,
};
use crate::components::auth::{urlencode, RequireRole};
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, FormError};
use crate::components::paging::Pager;
use crate::domain::market::{format_money, tonnes};
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn TransactionsPage() -> impl IntoView {
    view! {
        <Title text="Transactions · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Admin]>
            <Transactions />
        </RequireRole>
    }
}

#[component]
fn Transactions() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let view_ = move || {
        if get("view") == "listings" {
            "listings"
        } else {
            "orders"
        }
    };
    view! {
        <h1>"Transactions"</h1>
        <nav class="tabs" aria-label="What to monitor">
            <a href="/admin/transactions" class:current=move || view_() == "orders" aria-current=move || (view_() == "orders").then_some("page")>"Orders"</a>
            <a href="/admin/transactions?view=listings" class:current=move || view_() == "listings" aria-current=move || (view_() == "listings").then_some("page")>"Listings and auctions"</a>
        </nav>
        {move || if view_() == "listings" { view! { <Listings /> }.into_any() } else { view! { <Orders /> }.into_any() }}
    }
}

fn select(
    name: &'static str,
    id: &'static str,
    label: &'static str,
    options: &'static [(&'static str, &'static str)],
    current: String,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <select id=id name=name>
                {options.iter().map(|(v, l)| view! { <option value=*v selected=current == *v>{*l}</option> }).collect_view()}
            </select>
        </div>
    }
}

#[component]
fn Orders() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let resolve = ServerAction::<ResolveOrder>::new();
    let orders = Resource::new(
        move || {
            (
                get("status"),
                get("q"),
                get("page"),
                resolve.version().get(),
            )
        },
        |(status, q, page, _)| monitor_orders(Some(status), Some(q), Some(page)),
    );
    let error = error_of(*resolve);
    view! {
        <form method="get" action="/admin/transactions" class="filters">
            {move || select("status", "o-status", "Status", &[("any", "Any"), ("pending", "Pending"), ("completed", "Completed"), ("cancelled", "Cancelled"), ("refunded", "Refunded")], get("status"))}
            <div class="field">
                <label for="o-q">"Order, listing or person"</label>
                <input id="o-q" name="q" value=move || get("q") />
            </div>
            <button type="submit" class="button">"Search"</button>
        </form>
        <FormError error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match orders.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(m) if m.orders.is_empty() => view! { <p class="notice">"No orders match."</p> }.into_any(),
                    Ok(m) => {
                        let c = m.currency.clone();
                        let keep = format!("status={}&q={}", urlencode(&get("status")), urlencode(&get("q")));
                        view! {
                            <p class="muted" role="status">{format!("{} order{}", m.total, if m.total == 1 { "" } else { "s" })}</p>
                            <div class="table-wrap"><table class="data" data-testid="monitor-orders">
                                <thead><tr>
                                    <th scope="col">"Order"</th><th scope="col">"Date"</th><th scope="col">"Listing"</th><th scope="col">"Buyer"</th>
                                    <th scope="col">"Seller"</th><th scope="col" class="num">"Quantity"</th><th scope="col" class="num">"Buyer pays"</th>
                                    <th scope="col">"Status"</th><th scope="col">"Act"</th>
                                </tr></thead>
                                <tbody>
                                    {m.orders.into_iter().map(|o| {
                                        let stuck = o.status == "pending";
                                        let (n1, n2) = (o.number.clone(), o.number.clone());
                                        let (confirm, cancel) = (format!("Confirm {}", o.number), format!("Cancel {}", o.number));
                                        view! {
                                            <tr>
                                                <td><a href=format!("/orders/{}", o.number)>{o.number.clone()}</a></td>
                                                <td class="nowrap">{o.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                                <td>{format!("{}{}", o.listing, if o.kind == "auction" { " (auction)" } else { "" })}</td>
                                                <td>{o.buyer.clone()}</td>
                                                <td>{o.seller.clone()}</td>
                                                <td class="num">{tonnes(o.quantity_kg)}</td>
                                                <td class="num">{format_money(o.total, &c)}</td>
                                                <td>
                                                    <span class=format!("status status-{}", o.status)>{o.status.clone()}</span>
                                                    {o.payment.clone().map(|p| view! { <div class="muted small">{format!("payment {p}: {}", o.payment_status.clone().unwrap_or_default())}</div> })}
                                                    {o.dispute.clone().map(|d| view! { <div class="small"><a href="/admin/disputes?status=all">{format!("dispute {d}: {}", o.dispute_status.clone().unwrap_or_default())}</a></div> })}
                                                </td>
                                                <td class="row-actions">
                                                    {stuck.then(|| view! {
                                                        <ActionForm action=resolve attr:class="inline">
                                                            <input type="hidden" name="order" value=n1 />
                                                            <input type="hidden" name="action" value="confirm" />
                                                            <button type="submit" class="button small" aria-label=confirm>"Confirm paid"</button>
                                                        </ActionForm>
                                                        <ActionForm action=resolve attr:class="inline">
                                                            <input type="hidden" name="order" value=n2 />
                                                            <input type="hidden" name="action" value="cancel" />
                                                            <button type="submit" class="button small danger" aria-label=cancel>"Cancel"</button>
                                                        </ActionForm>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                            <Pager page=m.page pages=m.pages newest_first=true href=move |p| format!("/admin/transactions?{keep}&page={p}") />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn Listings() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let suspend = ServerAction::<SuspendListing>::new();
    let reinstate = ServerAction::<ReinstateListing>::new();
    let listings = Resource::new(
        move || {
            (
                get("kind"),
                get("status"),
                get("q"),
                get("page"),
                suspend.version().get(),
                reinstate.version().get(),
            )
        },
        |(kind, status, q, page, _, _)| {
            monitor_listings(Some(kind), Some(status), Some(q), Some(page))
        },
    );
    let error = Signal::derive(move || {
        error_of(*suspend)
            .get()
            .or_else(|| error_of(*reinstate).get())
    });
    view! {
        <form method="get" action="/admin/transactions" class="filters">
            <input type="hidden" name="view" value="listings" />
            {move || select("kind", "l-kind", "Type", &[("any", "Any"), ("fixed", "Fixed price"), ("auction", "Auction")], get("kind"))}
            {move || select("status", "l-status", "Status", &[("any", "Any"), ("active", "Active"), ("suspended", "Suspended"), ("sold", "Sold"), ("cancelled", "Cancelled"), ("expired", "Expired")], get("status"))}
            <div class="field">
                <label for="l-q">"Listing or seller"</label>
                <input id="l-q" name="q" value=move || get("q") />
            </div>
            <button type="submit" class="button">"Search"</button>
        </form>
        <FormError error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match listings.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(m) if m.listings.is_empty() => view! { <p class="notice">"No listings match."</p> }.into_any(),
                    Ok(m) => {
                        let c = m.currency.clone();
                        let keep = format!("view=listings&kind={}&status={}&q={}", urlencode(&get("kind")), urlencode(&get("status")), urlencode(&get("q")));
                        view! {
                            <p class="muted" role="status">{format!("{} listing{}", m.total, if m.total == 1 { "" } else { "s" })}</p>
                            <div class="table-wrap"><table class="data" data-testid="monitor-listings">
                                <thead><tr>
                                    <th scope="col">"Listing"</th><th scope="col">"Seller"</th><th scope="col">"Credits"</th>
                                    <th scope="col" class="num">"Sold / listed"</th><th scope="col" class="num">"Price per t"</th>
                                    <th scope="col">"Ends"</th><th scope="col">"Status"</th><th scope="col">"Act"</th>
                                </tr></thead>
                                <tbody>
                                    {m.listings.into_iter().map(|l| {
                                        let href = if l.kind == "auction" { format!("/auctions/{}", l.number) } else { format!("/market/{}", l.number) };
                                        let can_suspend = l.kind == "fixed" && l.status == "active";
                                        let suspended = l.status == "suspended";
                                        let (n1, n2) = (l.number.clone(), l.number.clone());
                                        let reason_id = format!("reason-{}", l.number);
                                        let reason_label = format!("Why {} is suspended", l.number);
                                        let reinstate_label = format!("Reinstate {}", l.number);
                                        view! {
                                            <tr>
                                                <td><a href=href>{l.number.clone()}</a>{(l.kind == "auction").then(|| view! { <span class="badge">"auction"</span> })}</td>
                                                <td>{l.seller.clone()}</td>
                                                <td>{format!("{} {}", l.region, l.vintage)}</td>
                                                <td class="num">{format!("{} / {}", tonnes(l.sold_kg), tonnes(l.listed_kg))}</td>
                                                <td class="num">{format_money(l.price_per_t, &c)}</td>
                                                <td class="nowrap">{l.ends_at.map(|e| e.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "—".into())}</td>
                                                <td>
                                                    <span class=format!("status status-{}", l.status)>{l.status.clone()}</span>
                                                    {l.bid_count.map(|b| view! { <div class="muted small">{format!("{b} bid{}{}", if b == 1 { "" } else { "s" }, l.outcome.clone().map(|o| format!(" · {}", o.replace('_', " "))).unwrap_or_default())}</div> })}
                                                    {l.suspended_reason.clone().map(|r| view! { <div class="muted small">{r}</div> })}
                                                </td>
                                                <td class="row-actions">
                                                    {can_suspend.then(|| view! {
                                                        <ActionForm action=suspend attr:class="inline">
                                                            <input type="hidden" name="listing" value=n1 />
                                                            <label class="visually-hidden" for=reason_id.clone()>{reason_label}</label>
                                                            <input id=reason_id name="reason" placeholder="Reason" required maxlength="500" />
                                                            <button type="submit" class="button small danger">"Suspend"</button>
                                                        </ActionForm>
                                                    })}
                                                    {suspended.then(|| view! {
                                                        <ActionForm action=reinstate attr:class="inline">
                                                            <input type="hidden" name="listing" value=n2 />
                                                            <button type="submit" class="button small" aria-label=reinstate_label>"Reinstate"</button>
                                                        </ActionForm>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                            <Pager page=m.page pages=m.pages newest_first=true href=move |p| format!("/admin/transactions?{keep}&page={p}") />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
