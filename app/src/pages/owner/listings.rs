//! Selling: list available credits of one region and vintage at a fixed price, change a
//! listing's price, lower its quantity, withdraw it, and follow the orders on it.

use crate::api::auctions::CreateAuction;
use crate::api::market::{
    seller_listings, CancelListing, CreateListing, RepriceListing, ResizeListing,
};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{
    error_of, price_to_confirm, reads_as_money, reads_as_tonnes, ConfirmFields, Field, FormError,
    Submit,
};
use crate::domain::market::{format_money, money_plain, percent, tonnes, tonnes_plain};
use crate::domain::user::Role;
use crate::pages::orders::OrderTable;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SellPage() -> impl IntoView {
    view! {
        <Title text="Sell credits · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner]>
            <Sell />
        </RequireRole>
    }
}

#[component]
fn Sell() -> impl IntoView {
    let create = ServerAction::<CreateListing>::new();
    let reprice = ServerAction::<RepriceListing>::new();
    let resize = ServerAction::<ResizeListing>::new();
    let cancel = ServerAction::<CancelListing>::new();
    let data = Resource::new(
        move || {
            (
                create.version().get(),
                reprice.version().get(),
                resize.version().get(),
                cancel.version().get(),
            )
        },
        |_| seller_listings(),
    );
    let create_error = error_of(*create);
    let create_confirm = price_to_confirm(create_error);
    let reprice_confirm = price_to_confirm(error_of(*reprice));
    let row_error = Signal::derive(move || {
        error_of(*reprice)
            .get()
            .or_else(|| error_of(*resize).get())
            .or_else(|| error_of(*cancel).get())
    });
    view! {
        <h1>"Sell credits"</h1>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(d) => {
                        let currency = d.currency.clone();
                        let has_credits = !d.classes.is_empty();
                        let auction_classes = d.classes.clone();
                        let price_hint = if d.currency == "VND" {
                            "In whole đồng, as shown on the site: 250.000 or 250000.".to_owned()
                        } else {
                            format!("In {}, e.g. 1,250.50.", d.currency)
                        };
                        let (confirm_currency, reprice_currency) = (currency.clone(), currency.clone());
                        let price_reads = reads_as_money(currency.clone(), " per tonne");
                        view! {
                            <section class="card" aria-labelledby="new-listing">
                                <h2 id="new-listing">"List credits at a fixed price"</h2>
                                {if has_credits {
                                    view! {
                                        <p class="muted">{format!(
                                            "The quantity is reserved from your available credits at once and returns if the listing is withdrawn or expires unsold. Buyers pay a {} fee; {} is taken from your proceeds.",
                                            percent(d.fees.buyer_rate), percent(d.fees.seller_rate)
                                        )}</p>
                                        {move || create_confirm.get().map(|c| {
                                            let label = format!("List at {} per t anyway", format_money(c.price_per_t, &confirm_currency));
                                            view! {
                                                <ActionForm action=create attr:class="confirm-price" attr:data-testid="confirm-listing-price">
                                                    <ConfirmFields confirm=c />
                                                    <button type="submit" class="button">{label}</button>
                                                </ActionForm>
                                            }
                                        })}
                                        <ActionForm action=create attr:class="grid two" attr:data-testid="create-listing">
                                            <FormError error=create_error />
                                            <div class="field" class:invalid=move || create_error.get().and_then(|e| e.field("class")).is_some()>
                                                <label for="field-class">"Credits"</label>
                                                <select id="field-class" name="class">
                                                    {d.classes.iter().map(|c| view! {
                                                        <option value=format!("{}:{}", c.region, c.vintage)>
                                                            {format!("{} · vintage {} — {} available", c.region, c.vintage, tonnes(c.available_kg))}
                                                        </option>
                                                    }).collect_view()}
                                                </select>
                                                <p class="field-error">{move || create_error.get().and_then(|e| e.field("class"))}</p>
                                            </div>
                                            <Field label="Quantity (t)" name="quantity" error=create_error inputmode="decimal" hint="Up to 3 decimals: 0.001 t = 1 kg." reads=reads_as_tonnes() />
                                            <Field label="Price per tonne" name="price" error=create_error inputmode="decimal" hint=price_hint.clone() reads=price_reads />
                                            <Field label="Minimum lot (t)" name="min_lot" error=create_error inputmode="decimal" value="0.001" hint="The smallest quantity one buyer may take." reads=reads_as_tonnes() />
                                            <Field label="Ends on (optional)" name="expires_on" error=create_error kind="date" hint="At the end of that day (UTC); empty means until sold out or withdrawn." />
                                            <div class="field">
                                                <label for="field-description">"Description (optional)"</label>
                                                <textarea id="field-description" name="description" rows="3" maxlength="2000"></textarea>
                                                <p class="field-error">{move || create_error.get().and_then(|e| e.field("description"))}</p>
                                            </div>
                                            <div class="form-actions"><Submit action=*create label="List for sale" busy="Listing…" /></div>
                                        </ActionForm>
                                    }.into_any()
                                } else {
                                    view! { <p class="muted">"You have no available credits to list. Credits arrive in your wallet when a verifier approves one of your " <a href="/credits">"requests"</a> "."</p> }.into_any()
                                }}
                            </section>
                            {has_credits.then(|| view! { <PriceSuggestions suggestions=d.suggestions.clone() currency=d.currency.clone() /> })}
                            {has_credits.then(|| view! { <NewAuctionForm classes=auction_classes.clone() fees=d.fees currency=d.currency.clone() default_hours=d.auction_default_hours /> })}
                            <h2>"Your listings"</h2>
                            <FormError error=row_error />
                            {move || reprice_confirm.get().map(|c| {
                                let label = format!("Set the price to {} per t anyway", format_money(c.price_per_t, &reprice_currency));
                                view! {
                                    <ActionForm action=reprice attr:class="confirm-price" attr:data-testid="confirm-reprice">
                                        <ConfirmFields confirm=c />
                                        <button type="submit" class="button">{label}</button>
                                    </ActionForm>
                                }
                            })}
                            {if d.listings.is_empty() {
                                view! { <p class="muted">"No listings yet."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="data" data-testid="my-listings">
                                        <thead><tr>
                                            <th scope="col">"Listing"</th><th scope="col">"Credits"</th><th scope="col" class="num">"Listed"</th>
                                            <th scope="col" class="num">"Sold"</th><th scope="col" class="num">"Open"</th><th scope="col" class="num">"Price per t"</th>
                                            <th scope="col">"Status"</th><th scope="col">"Change"</th>
                                        </tr></thead>
                                        <tbody>
                                            {d.listings.into_iter().map(|l| {
                                                // An auction runs to its end: it is followed on its own page.
                                                let active = l.status == "active" && l.kind != "auction";
                                                let suspended = l.status == "suspended";
                                                let (n1, n2, n3, n4) = (l.number.clone(), l.number.clone(), l.number.clone(), l.number.clone());
                                                let (price_id, qty_id) = (format!("price-{}", l.number), format!("qty-{}", l.number));
                                                let (price_label, qty_label) = (format!("New price for {}", l.number), format!("New quantity for {} (t)", l.number));
                                                let price_now = money_plain(l.price_per_t, &currency);
                                                let qty_now = tonnes_plain(l.quantity_kg);
                                                view! {
                                                    <tr id=l.number.clone()>
                                                        <td><a href=if l.kind == "auction" { format!("/auctions/{}", l.number) } else { format!("/market/{}", l.number) }>{l.number.clone()}</a>
                                                            {(l.kind == "auction").then(|| view! { " " <span class="badge">"Auction"</span> })}</td>
                                                        <td>{format!("{} · {}", l.region, l.vintage)}</td>
                                                        <td class="num">{tonnes(l.quantity_kg)}</td>
                                                        <td class="num">{tonnes(l.sold_kg)}</td>
                                                        <td class="num">{tonnes(l.available_kg)}</td>
                                                        <td class="num">{format_money(l.price_per_t, &currency)}</td>
                                                        <td><span class=format!("status status-{}", l.status)>{l.status.clone()}</span>
                                                            {(l.pending_kg > 0).then(|| view! { <div class="muted small">{format!("{} awaiting payment", tonnes(l.pending_kg))}</div> })}</td>
                                                        <td class="row-actions">
                                                            {active.then(|| view! {
                                                                <ActionForm action=reprice attr:class="inline">
                                                                    <input type="hidden" name="listing" value=n1 />
                                                                    <label class="visually-hidden" for=price_id.clone()>{price_label}</label>
                                                                    <input id=price_id name="price" size="9" inputmode="decimal" value=price_now />
                                                                    <button type="submit" class="button small secondary">"Set price"</button>
                                                                </ActionForm>
                                                                <ActionForm action=resize attr:class="inline">
                                                                    <input type="hidden" name="listing" value=n2 />
                                                                    <label class="visually-hidden" for=qty_id.clone()>{qty_label}</label>
                                                                    <input id=qty_id name="quantity" size="7" inputmode="decimal" value=qty_now />
                                                                    <button type="submit" class="button small secondary">"Set quantity"</button>
                                                                </ActionForm>
                                                                <ActionForm action=cancel attr:class="inline">
                                                                    <input type="hidden" name="listing" value=n3 />
                                                                    <button type="submit" class="button small danger">"Withdraw"</button>
                                                                </ActionForm>
                                                            })}
                                                            {suspended.then(|| view! {
                                                                <ActionForm action=cancel attr:class="inline">
                                                                    <input type="hidden" name="listing" value=n4 />
                                                                    <button type="submit" class="button small danger">"Withdraw"</button>
                                                                </ActionForm>
                                                            })}
                                                        </td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table></div>
                                }.into_any()
                            }}
                            <h2>"Orders on your listings"</h2>
                            {if d.orders.is_empty() {
                                view! { <p class="muted">"No orders yet."</p> }.into_any()
                            } else {
                                view! { <OrderTable lines=d.orders currency=d.currency.clone() /> }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// Auctioning a lot: the whole lot goes to the highest bidder when the time is up.
#[component]
fn NewAuctionForm(
    classes: Vec<crate::api::market::CreditClass>,
    fees: crate::domain::trade::Fees,
    currency: String,
    default_hours: i32,
) -> impl IntoView {
    let create = ServerAction::<CreateAuction>::new();
    // The usual lengths, and the platform's default among them.
    let default_minutes = i64::from(default_hours) * 60;
    let mut lengths: Vec<(i64, String)> = [
        (1, "1 minute"),
        (5, "5 minutes"),
        (15, "15 minutes"),
        (60, "1 hour"),
        (360, "6 hours"),
        (1440, "1 day"),
        (4320, "3 days"),
        (10080, "7 days"),
        (43200, "30 days"),
    ]
    .into_iter()
    .map(|(m, l)| (m, l.to_owned()))
    .collect();
    if !lengths.iter().any(|(m, _)| *m == default_minutes) {
        lengths.push((default_minutes, format!("{default_hours} hours")));
        lengths.sort();
    }
    let error = error_of(*create);
    let money_hint = {
        let currency = currency.clone();
        move |what: &str| {
            if currency == "VND" {
                format!("{what} per tonne, in whole đồng (250.000 or 250000).")
            } else {
                format!("{what} per tonne, in {currency}.")
            }
        }
    };
    let money_reads = reads_as_money(currency.clone(), " per tonne");
    view! {
        <section class="card" aria-labelledby="new-auction">
            <h2 id="new-auction">"Auction a lot"</h2>
            <p class="muted">{format!(
                "The lot is reserved at once and sold whole to the highest bidder when the time is up, at one increment above the second-highest bid (a late bid extends the end). Below your reserve, or without bids, it comes back to you. The winner pays a {} fee; {} is taken from your proceeds.",
                percent(fees.buyer_rate), percent(fees.seller_rate)
            )}</p>
            <ActionForm action=create attr:class="grid two" attr:data-testid="create-auction">
                <FormError error />
                <div class="field" class:invalid=move || error.get().and_then(|e| e.field("class")).is_some()>
                    <label for="auction-class">"Credits"</label>
                    <select id="auction-class" name="class">
                        {classes.iter().map(|c| view! {
                            <option value=format!("{}:{}", c.region, c.vintage)>
                                {format!("{} · vintage {} — {} available", c.region, c.vintage, tonnes(c.available_kg))}
                            </option>
                        }).collect_view()}
                    </select>
                    <p class="field-error">{move || error.get().and_then(|e| e.field("class"))}</p>
                </div>
                <Field label="Lot (t)" name="quantity" id="auction-quantity" error inputmode="decimal" hint="Sold whole, to one buyer." reads=reads_as_tonnes() />
                <Field label="Starting price" name="starting_price" id="auction-start" error inputmode="decimal" hint=money_hint("The first bid's least") reads=money_reads />
                <Field label="Reserve (optional, hidden)" name="reserve" id="auction-reserve" error inputmode="decimal" hint="Bidders only see whether it is met." reads=money_reads />
                <Field label="Buy-now price (optional)" name="buy_now" id="auction-buy-now" error inputmode="decimal" hint="A buyer may end the auction at this price until the bidding passes it." reads=money_reads />
                <Field label="Increment (optional)" name="increment" id="auction-increment" error inputmode="decimal" hint="A fixed step per bid; empty: steps that grow with the price." reads=money_reads />
                <div class="field" class:invalid=move || error.get().and_then(|e| e.field("duration_minutes")).is_some()>
                    <label for="auction-duration">"Runs for"</label>
                    <select id="auction-duration" name="duration_minutes">
                        {lengths.into_iter().map(|(m, label)| view! { <option value=m.to_string() selected=m == default_minutes>{label}</option> }).collect_view()}
                    </select>
                    <p class="field-error">{move || error.get().and_then(|e| e.field("duration_minutes"))}</p>
                </div>
                <div class="field">
                    <label for="auction-description">"Description (optional)"</label>
                    <textarea id="auction-description" name="description" rows="3" maxlength="2000"></textarea>
                    <p class="field-error">{move || error.get().and_then(|e| e.field("description"))}</p>
                </div>
                <div class="form-actions"><Submit action=*create label="Start the auction" busy="Starting…" /></div>
            </ActionForm>
        </section>
    }
}

/// What the platform's trades suggest for each class the seller can list, for listings and
/// auctions alike.
#[component]
pub fn PriceSuggestions(
    suggestions: Vec<crate::domain::pricing::Suggestion>,
    currency: String,
) -> impl IntoView {
    let m = move |v| format_money(v, &currency);
    view! {
        <section class="card" aria-labelledby="price-suggestion">
            <h2 id="price-suggestion">"Suggested prices"</h2>
            <p class="muted">"From the platform's own trades of the last year: recent and larger trades weigh more; the suggestion is their weighted median and the band runs from the 20th to the 80th percentile. "
                <a href="/market/trends">"Market trends"</a></p>
            <div class="table-wrap"><table class="data" data-testid="price-suggestions">
                <thead><tr>
                    <th scope="col">"Credits"</th><th scope="col" class="num">"Suggested per t"</th><th scope="col" class="num">"Band"</th>
                    <th scope="col" class="num">"Trades"</th><th scope="col" class="num">"Back-tested error"</th><th scope="col">"Based on"</th>
                </tr></thead>
                <tbody>
                    {suggestions.into_iter().map(|s| view! {
                        <tr>
                            <td>{format!("{} · {}", s.region, s.vintage)}</td>
                            <td class="num"><strong>{m(s.price_per_t)}</strong></td>
                            <td class="num nowrap">{format!("{} – {}", m(s.low), m(s.high))}</td>
                            <td class="num">{s.trades}</td>
                            <td class="num">{s.backtest_error_percent.map(|e| format!("±{e} % over {} trades", s.backtest_trades)).unwrap_or_else(|| "too little history".into())}</td>
                            <td>{s.rule_based.then(|| view! { <span class="badge warn">"Rule-based default"</span> " " })}{s.basis.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
}
