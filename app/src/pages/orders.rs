//! Orders: the buyer's purchase history, and one order's page for its buyer, its seller or an
//! admin — the money lines, the serials delivered, the invoice and any certificate.

use crate::api::disputes::{Dispute, OpenDispute};
use crate::api::market::{get_order, my_orders, OrderLine};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, FormError, Submit};
use crate::components::live::InboxFeed;
use crate::domain::market::{format_money, tonnes};
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn OrdersPage() -> impl IntoView {
    view! {
        <Title text="Orders · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Buyer]>
            <Orders />
        </RequireRole>
    }
}

#[component]
fn Orders() -> impl IntoView {
    let orders = Resource::new(|| (), |_| my_orders());
    view! {
        <h1>"Your purchases"</h1>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match orders.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(p) if p.orders.is_empty() => view! {
                        <p class="notice">"No purchases yet. " <a href="/market">"Browse the marketplace"</a> "."</p>
                    }.into_any(),
                    Ok(p) => view! { <OrderTable lines=p.orders currency=p.currency /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Orders of one side (the caller's purchases or sales).
#[component]
pub fn OrderTable(lines: Vec<OrderLine>, currency: String) -> impl IntoView {
    let sold = lines.first().is_some_and(|l| l.side == "sold");
    view! {
        <div class="table-wrap"><table class="data" data-testid="orders">
            <thead><tr>
                <th scope="col">"Order"</th><th scope="col">"Date"</th><th scope="col">{if sold { "Buyer" } else { "Seller" }}</th>
                <th scope="col">"Credits"</th><th scope="col" class="num">"Quantity"</th><th scope="col" class="num">"Price per t"</th>
                <th scope="col" class="num">{if sold { "You received" } else { "You paid" }}</th><th scope="col">"Status"</th><th scope="col">"Documents"</th>
            </tr></thead>
            <tbody>
                {lines.into_iter().map(|o| {
                    let invoice = o.invoice_number.as_ref().map(|_| format!("/invoices/{}.pdf", o.number));
                    view! {
                        <tr>
                            <td><a href=format!("/orders/{}", o.number)>{o.number.clone()}</a></td>
                            <td class="nowrap">{o.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                            <td>{o.counterparty}</td>
                            <td>{format!("{} · {} · {}", o.listing, o.region, o.vintage)}</td>
                            <td class="num">{tonnes(o.quantity_kg)}</td>
                            <td class="num">{format_money(o.price_per_t, &currency)}</td>
                            <td class="num">{format_money(o.total, &currency)}</td>
                            <td><span class=format!("status status-{}", o.status)>{o.status.clone()}</span></td>
                            <td>
                                {invoice.map(|href| view! { <a href=href download>"Invoice"</a>" " })}
                                {o.certificate.map(|c| view! { <a href=format!("/verify/{c}")>{c.clone()}</a> })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table></div>
    }
}

#[component]
pub fn OrderPage() -> impl IntoView {
    view! {
        <Title text="Order · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Buyer, Role::EvOwner, Role::Admin]>
            <OrderDetail />
        </RequireRole>
    }
}

#[component]
fn OrderDetail() -> impl IntoView {
    let params = use_params_map();
    let dispute = ServerAction::<OpenDispute>::new();
    // A decision on a dispute (or a payment) arrives as a notification: the page follows.
    let feed = InboxFeed::get();
    let order = Resource::new(
        move || {
            (
                params.read().get("number").unwrap_or_default(),
                // The page may be gone by the time a streamed response finishes (a form posted
                // without JavaScript): nothing to follow then.
                dispute.version().try_get().unwrap_or_default(),
                feed.stamp(),
            )
        },
        |(number, _, _)| get_order(number),
    );
    let dispute_error = error_of(*dispute);
    view! {
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match order.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(o) => {
                        let m = {
                            let c = o.currency.clone();
                            move |v| format_money(v, &c)
                        };
                        let back = match o.side.as_str() {
                            "bought" => ("/orders", "← Your purchases"),
                            "sold" => ("/sell", "← Your listings"),
                            _ => ("/", "← Home"),
                        };
                        let invoice = o.invoice_number.clone().map(|n| (n, format!("/invoices/{}.pdf", o.number)));
                        let pending_payment = o.payment.clone().filter(|(_, s)| s == "pending" && o.status == "pending");
                        view! {
                            <p><a href=back.0>{back.1}</a></p>
                            <h1>{format!("Order {}", o.number)}</h1>
                            <p class=format!("notice status-{}", o.status) role="status" data-testid="order-status">
                                {match o.status.as_str() {
                                    "completed" => format!("Completed on {}.", o.completed_at.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()),
                                    "pending" => "Waiting for the payment. The credits are reserved for you until it completes or expires.".to_owned(),
                                    "cancelled" => format!("Cancelled. {}", o.cancel_reason.clone().unwrap_or_default()),
                                    "refunded" => format!("Refunded after dispute {}.", o.dispute.as_ref().map(|d| d.number.clone()).unwrap_or_default()),
                                    other => other.to_owned(),
                                }}
                            </p>
                            {pending_payment.map(|(number, _)| view! {
                                <p><a class="button" href=format!("/money?payment={number}")>{format!("Payment {number}")}</a></p>
                            })}
                            <dl class="facts">
                                <dt>"Listing"</dt><dd><a href=format!("/market/{}", o.listing)>{o.listing.clone()}</a></dd>
                                <dt>"Buyer"</dt><dd>{o.buyer_name.clone()}</dd>
                                <dt>"Seller"</dt><dd>{o.seller_name.clone()}</dd>
                                <dt>"Credits"</dt><dd>{format!("{} of {} {}", tonnes(o.quantity_kg), o.region, o.vintage)}</dd>
                                <dt>"Price"</dt><dd>{format!("{} per t", m(o.price_per_t))}</dd>
                                <dt>"Ordered"</dt><dd>{o.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}</dd>
                            </dl>
                            <div class="table-wrap"><table class="data money-lines" data-testid="money-lines">
                                <tbody>
                                    <tr><th scope="row">"Credits"</th><td class="num">{m(o.amount)}</td></tr>
                                    <tr><th scope="row">"Buyer's fee"</th><td class="num">{m(o.buyer_fee)}</td></tr>
                                    <tr class="total"><th scope="row">"Buyer pays"</th><td class="num" data-testid="buyer-pays">{m(o.buyer_pays)}</td></tr>
                                    <tr><th scope="row">"Seller's fee"</th><td class="num">{format!("−{}", m(o.seller_fee))}</td></tr>
                                    <tr class="total"><th scope="row">"Seller receives"</th><td class="num">{m(o.seller_receives)}</td></tr>
                                </tbody>
                            </table></div>
                            {invoice.map(|(n, href)| view! { <p><a class="button" href=href download>{format!("Download invoice {n} (PDF)")}</a></p> })}
                            {o.certificate.clone().map(|c| view! {
                                <p>{format!("Retired on purchase for {}: ", o.retire_beneficiary.clone().unwrap_or_default())}
                                    <a href=format!("/verify/{c}")>{format!("certificate {c}")}</a></p>
                            })}
                            {o.dispute.clone().map(|d| view! { <DisputeFacts d currency=o.currency.clone() /> })}
                            {o.dispute_until.filter(|_| o.side == "bought").map(|until| {
                                let number = o.number.clone();
                                view! {
                                    <details class="dispute-open">
                                        <summary>"Something wrong with this order? Open a dispute"</summary>
                                        <ActionForm action=dispute>
                                            <input type="hidden" name="order" value=number />
                                            <p class="muted">{format!("You can dispute this order until {}. An administrator reads both sides and may refund you: your money back, and the credits you have not retired back to the seller.", until.format("%Y-%m-%d %H:%M UTC"))}</p>
                                            <div class="field">
                                                <label for="dispute-reason">"What went wrong"</label>
                                                <textarea id="dispute-reason" name="reason" rows="4" required minlength="10" maxlength="2000"></textarea>
                                            </div>
                                            <FormError error=dispute_error />
                                            <Submit action=*dispute label="Open the dispute" busy="Opening…" />
                                        </ActionForm>
                                    </details>
                                }
                            })}
                            {(!o.serials.is_empty()).then(|| view! {
                                <h2>"Serials delivered"</h2>
                                <ul class="serials">{o.serials.iter().cloned().map(|s| view! { <li><code class="serial">{s}</code></li> }).collect_view()}</ul>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// A dispute as both parties and the admin see it.
#[component]
pub fn DisputeFacts(d: Dispute, currency: String) -> impl IntoView {
    let m = move |v| format_money(v, &currency);
    view! {
        <section class="dispute" data-testid="dispute">
            <h2>{format!("Dispute {}", d.number)}</h2>
            <dl class="facts">
                <dt>"Opened"</dt><dd>{d.opened_at.format("%Y-%m-%d %H:%M UTC").to_string()}</dd>
                <dt>"The buyer's reason"</dt><dd>{d.reason.clone()}</dd>
                <dt>"Status"</dt>
                <dd data-testid="dispute-status">{match d.status.as_str() {
                    "open" => "Open: an administrator will decide it.".to_owned(),
                    "refunded" => format!(
                        "Refunded: {} back to the buyer; {} of credits back to the seller.",
                        d.refunded_amount.map(&m).unwrap_or_default(),
                        tonnes(d.returned_kg.unwrap_or(0))
                    ),
                    _ => "Rejected: the order stands.".to_owned(),
                }}</dd>
                {d.decided_by.clone().map(|by| view! {
                    <dt>"Decided"</dt>
                    <dd>{format!("by {by} on {}{}", d.decided_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(),
                        if d.decision_note.is_empty() { String::new() } else { format!(": {}", d.decision_note) })}</dd>
                })}
            </dl>
        </section>
    }
}
