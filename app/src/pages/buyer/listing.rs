//! One listing: what is for sale, who sells it, the evidence behind the credits, the prices of
//! comparable trades, and the purchase form (which works without JavaScript; with it, the
//! total is worked out as you type, with the same rules the server applies).

use crate::api::market::{get_listing, BuyCredits, ListingDetail};
use crate::components::auth::urlencode;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, leave_for, FormError, Submit};
use crate::domain::market::{format_money, parse_tonnes, percent, tonnes, tonnes_plain};
use crate::domain::trade::{check_quantity, money, Settlement};
use crate::domain::user::Role;
use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn ListingPage() -> impl IntoView {
    let params = use_params_map();
    let buy = ServerAction::<BuyCredits>::new();
    Effect::new(move |_| {
        if let Some(Ok(p)) = buy.value().get() {
            leave_for(&p.next);
        }
    });
    // A purchase refused because the price rose: the listing is read again, so the form shows
    // (and sends) the new price.
    let repriced = Memo::new(move |seen: Option<&usize>| {
        let seen = seen.copied().unwrap_or(0);
        match buy.value().get() {
            Some(Err(AppError::PriceChanged { .. })) => seen + 1,
            _ => seen,
        }
    });
    let detail = Resource::new(
        move || {
            (
                params.read().get("number").unwrap_or_default(),
                repriced.get(),
            )
        },
        |(number, _)| get_listing(number),
    );
    view! {
        <Title text="Listing · EV Carbon Exchange" />
        <p><a href="/market">"← Marketplace"</a></p>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(d) => view! { <Listing d buy /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Listing(d: ListingDetail, buy: ServerAction<BuyCredits>) -> impl IntoView {
    let l = d.listing.clone();
    let currency = d.currency.clone();
    let m = {
        let c = currency.clone();
        move |v| format_money(v, &c)
    };
    let methodologies = {
        let mut v: Vec<String> = d.evidence.iter().map(|e| e.methodology.clone()).collect();
        v.sort();
        v.dedup();
        v.join(", ")
    };
    let open = l.status == "active" && l.available_kg > 0;
    let status = match (l.status.as_str(), l.available_kg) {
        ("active", 0) => "Sold out (payments under way)".to_owned(),
        ("active", _) => "Open".to_owned(),
        (s, _) => format!("{}{}", s[..1].to_uppercase(), &s[1..]),
    };
    view! {
        <h1>{format!("{} · {} {} credits", l.number, l.region, l.vintage)}</h1>
        <div class="columns">
            <section aria-labelledby="facts-heading">
                <h2 id="facts-heading" class="visually-hidden">"Facts"</h2>
                <dl class="facts">
                    <dt>"Status"</dt><dd data-testid="listing-status">{status}</dd>
                    <dt>"Price"</dt><dd data-testid="listing-price">{format!("{} per t", m(l.price_per_t))}</dd>
                    <dt>"Available"</dt><dd data-testid="listing-available">{format!("{} of {} listed", tonnes(l.available_kg), tonnes(l.listed_kg))}</dd>
                    <dt>"Minimum lot"</dt><dd>{tonnes(l.min_lot_kg)}</dd>
                    <dt>"Region · vintage"</dt><dd>{format!("{} · {}", l.region, l.vintage)}</dd>
                    <dt>"Methodology"</dt><dd>{if methodologies.is_empty() { "—".to_owned() } else { methodologies }}</dd>
                    <dt>"Seller"</dt><dd>{format!("{} (member since {})", l.seller_name, d.seller_since.format("%B %Y"))}</dd>
                    <dt>"Listed"</dt><dd>{l.created_at.format("%Y-%m-%d").to_string()}</dd>
                    <dt>"Ends"</dt><dd>{l.expires_at.map(|e| e.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_else(|| "When sold out or withdrawn".into())}</dd>
                    <dt>"Fees"</dt><dd>{format!("{} paid by the buyer, {} by the seller", percent(d.fees.buyer_rate), percent(d.fees.seller_rate))}</dd>
                </dl>
                {(!l.description.is_empty()).then(|| view! { <p class="description">{l.description.clone()}</p> })}
            </section>
            <BuyPanel d=d.clone() buy open />
        </div>
        <h2>"Evidence behind these credits"</h2>
        {if d.evidence.is_empty() {
            view! { <p class="muted">"No issuance recorded."</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap"><table class="data" data-testid="evidence">
                    <thead><tr>
                        <th scope="col">"Request"</th><th scope="col">"Driving period"</th><th scope="col" class="num">"Trips"</th>
                        <th scope="col" class="num">"km"</th><th scope="col">"Methodology"</th><th scope="col">"Verifier"</th>
                        <th scope="col">"Approved"</th><th scope="col" class="num">"In this listing"</th><th scope="col">"Serials"</th>
                    </tr></thead>
                    <tbody>
                        {d.evidence.iter().cloned().map(|e| view! {
                            <tr>
                                <td>{e.request}</td><td class="nowrap">{e.period}</td><td class="num">{e.trips}</td>
                                <td class="num">{e.distance_km.to_string()}</td><td>{e.methodology}</td><td>{e.verifier}</td>
                                <td class="nowrap">{e.approved_at.format("%Y-%m-%d").to_string()}</td><td class="num">{tonnes(e.kg)}</td>
                                <td>{e.serials.into_iter().map(|s| view! { <code class="serial">{s}</code>" " }).collect_view()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
            }.into_any()
        }}
        <h2>"Prices of comparable credits"</h2>
        {if d.history.is_empty() {
            view! { <p class="muted">{format!("No {} {} credits have traded in the last 26 weeks.", l.region, l.vintage)}</p> }.into_any()
        } else {
            let svg = d.history_svg.clone();
            let label = format!("Line chart of the weekly average price of {} {} credits", l.region, l.vintage);
            view! {
                {(!svg.is_empty()).then(|| view! { <figure class="chart" role="img" aria-label=label inner_html=svg></figure> })}
                <div class="table-wrap"><table class="data" data-testid="price-history">
                    <thead><tr><th scope="col">"Week of"</th><th scope="col" class="num">"Average per t"</th><th scope="col" class="num">"Trades"</th><th scope="col" class="num">"Traded"</th></tr></thead>
                    <tbody>
                        {d.history.iter().cloned().map(|p| view! {
                            <tr><td>{p.week}</td><td class="num">{m(p.average_per_t)}</td><td class="num">{p.trades}</td><td class="num">{tonnes(p.kg)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table></div>
            }.into_any()
        }}
    }
}

#[component]
fn BuyPanel(d: ListingDetail, buy: ServerAction<BuyCredits>, open: bool) -> impl IntoView {
    let l = d.listing.clone();
    let error = error_of(*buy);
    let currency = d.currency.clone();
    let default_qty = tonnes_plain(l.min_lot_kg.max(1).min(l.available_kg.max(1)));
    let (quantity, set_quantity) = signal(default_qty.clone());
    let (retire, set_retire) = signal(false);
    let fees = d.fees;
    let price = l.price_per_t;
    let (min_lot, left) = (l.min_lot_kg, l.available_kg);
    let estimate = {
        let currency = currency.clone();
        move || match parse_tonnes(&quantity.get()) {
            Err(e) => e,
            Ok(kg) => match check_quantity(kg, min_lot, left) {
                Err(problem) => problem.message(),
                Ok(()) => {
                    let s = Settlement::new(price, kg, fees);
                    format!(
                        "{} at {} per t: {} + {} fee = {} to pay",
                        tonnes(kg),
                        format_money(price, &currency),
                        format_money(s.amount, &currency),
                        format_money(s.buyer_fee, &currency),
                        format_money(s.buyer_pays, &currency)
                    )
                }
            },
        }
    };
    let wallet = d
        .wallet_available
        .map(|w| format!("Your wallet: {}", format_money(w, &currency)));
    let number = l.number.clone();
    // The price shown goes with the purchase: a higher one by the time it is decided is refused.
    let seen_price = money(price).to_string();
    let key = d.purchase_key.clone();
    let here = format!("/market/{}", l.number);
    view! {
        <section class="card buy" aria-labelledby="buy-heading">
            <h2 id="buy-heading">"Buy"</h2>
            {
                let role = d.viewer;
                if l.kind == "auction" {
                    let auction = format!("/auctions/{}", l.number);
                    view! { <p>"This lot is sold by auction. " <a href=auction class="button">"Bid on its auction page"</a></p> }.into_any()
                } else if d.is_own {
                    view! { <p class="muted">"This is your listing. Manage it on your " <a href="/sell">"Sell"</a> " page."</p> }.into_any()
                } else if !open {
                    view! { <p class="muted">"This listing is not open for purchases."</p> }.into_any()
                } else if role.is_none() {
                    let login = format!("/login?next={}", urlencode(&here));
                    view! { <p><a href=login class="button">"Sign in to buy"</a></p><p class="muted">"New here? " <a href="/signup">"Create a buyer account"</a> "."</p> }.into_any()
                } else if role != Some(Role::Buyer) {
                    view! { <p class="muted">"Buying is for buyer accounts."</p> }.into_any()
                } else {
                    view! {
                        <ActionForm action=buy attr:class="stack" attr:data-testid="buy-form">
                            <FormError error />
                            <input type="hidden" name="listing" value=number.clone() />
                            <input type="hidden" name="expected_price" value=seen_price.clone() />
                            <input type="hidden" name="idempotency_key" value=key.clone() />
                            <div class="field" class:invalid=move || error.get().and_then(|e| e.field("quantity")).is_some()>
                                <label for="buy-quantity">"Quantity (t)"</label>
                                <input id="buy-quantity" name="quantity" inputmode="decimal" required
                                    value=default_qty.clone()
                                    on:input=move |ev| set_quantity.set(event_target_value(&ev))
                                    aria-describedby="buy-estimate buy-quantity-error" />
                                <small class="hint" id="buy-estimate" aria-live="polite" data-testid="buy-estimate">{estimate.clone()}</small>
                                <p class="field-error" id="buy-quantity-error">{move || error.get().and_then(|e| e.field("quantity"))}</p>
                            </div>
                            <fieldset class="choices">
                                <legend>"Pay"</legend>
                                <label><input type="radio" name="pay_with" value="wallet" checked />" From my wallet"</label>
                                {wallet.clone().map(|w| view! { <small class="hint">{w}</small> })}
                                <label><input type="radio" name="pay_with" value="gateway" />" At checkout (card, through the payment gateway)"</label>
                            </fieldset>
                            <label class="check">
                                <input type="checkbox" name="retire" value="on" on:change=move |ev| set_retire.set(event_target_checked(&ev)) />
                                " Retire these credits at once (you get a certificate)"
                            </label>
                            <div class="retire-fields" class:muted=move || !retire.get()>
                                <div class="field" class:invalid=move || error.get().and_then(|e| e.field("beneficiary")).is_some()>
                                    <label for="buy-beneficiary">"Beneficiary (if retiring)"</label>
                                    <input id="buy-beneficiary" name="beneficiary" />
                                    <p class="field-error">{move || error.get().and_then(|e| e.field("beneficiary"))}</p>
                                </div>
                                <div class="field" class:invalid=move || error.get().and_then(|e| e.field("reason")).is_some()>
                                    <label for="buy-reason">"Reason (if retiring)"</label>
                                    <input id="buy-reason" name="reason" />
                                    <p class="field-error">{move || error.get().and_then(|e| e.field("reason"))}</p>
                                </div>
                            </div>
                            <Submit action=*buy label="Buy" busy="Buying…" />
                        </ActionForm>
                    }.into_any()
                }
            }
        </section>
    }
}
