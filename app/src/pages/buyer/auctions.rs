//! Auctions: the list with its filters and live countdowns, and one auction's page — the live
//! high bid, leader (by alias), time left, bid count, reserve, extensions and latest bids,
//! followed over Server-Sent Events, with the bid form answering as you type by the same rules
//! the server applies. Every form also works as a plain form post before hydration.

use crate::api::auctions::{
    get_auction, list_auctions, AuctionDetail, AuctionLine, AuctionLive, BuyNow, PlaceBid,
    WatchAuction,
};
use crate::components::auth::urlencode;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, price_to_confirm, ConfirmFields, FormError, Submit};
use crate::components::live::{ending_soon, follow_auction, seconds_left, server_clock};
use crate::domain::auction::{check_bid, time_left, Increment, INCREMENT_TABLE};
use crate::domain::market::{format_money, parse_money, percent, tonnes};
use crate::domain::trade::Settlement;
use crate::domain::user::Role;
use chrono::{DateTime, Utc};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

const FILTERS: [(&str, &str, bool); 6] = [
    ("open", "Open", false),
    ("ending_soon", "Ending within the hour", false),
    ("my_bids", "My bids", true),
    ("watching", "Watching", true),
    ("my_lots", "My lots", true),
    ("ended", "Ended", false),
];

#[component]
pub fn AuctionsPage() -> impl IntoView {
    let query = use_query_map();
    let list = Resource::new(
        move || query.read().get("filter"),
        |filter| list_auctions(filter),
    );
    view! {
        <Title text="Auctions · EV Carbon Exchange" />
        <h1>"Auctions"</h1>
        <p class="muted">"Bid for whole lots of verified credits. Set your maximum: the platform bids for you, one increment at a time, only as far as needed."</p>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(l) => {
                        let signed_in = l.viewer.is_some();
                        let filter = l.filter.clone();
                        let now = server_clock(l.server_now, Signal::derive(move || l.server_now));
                        view! {
                            <nav class="tabs" aria-label="Which auctions">
                                {FILTERS.iter().filter(|f| signed_in || !f.2).map(|(key, label, _)| {
                                    let current = *key == filter;
                                    view! {
                                        <a href=format!("/auctions?filter={key}") class:current=current
                                            aria-current=current.then_some("page")>{*label}</a>
                                    }
                                }).collect_view()}
                            </nav>
                            {if l.auctions.is_empty() {
                                view! { <p class="muted" data-testid="no-auctions">"No auctions here."</p> }.into_any()
                            } else {
                                let currency = l.currency.clone();
                                view! {
                                    <div class="table-wrap"><table class="data" data-testid="auctions">
                                        <thead><tr>
                                            <th scope="col">"Auction"</th><th scope="col">"Credits"</th><th scope="col" class="num">"Lot"</th>
                                            <th scope="col" class="num">"High bid per t"</th><th scope="col" class="num">"Bids"</th>
                                            <th scope="col">"Reserve"</th><th scope="col">"Time left"</th><th scope="col">"You"</th>
                                        </tr></thead>
                                        <tbody>
                                            {l.auctions.into_iter().map(|a| view! { <Row a currency=currency.clone() now /> }).collect_view()}
                                        </tbody>
                                    </table></div>
                                }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn Row(a: AuctionLine, currency: String, now: ReadSignal<DateTime<Utc>>) -> impl IntoView {
    let ends_at = a.ends_at;
    let closed = a.outcome.clone();
    let left = move || match &closed {
        Some(o) => outcome_label(o).to_owned(),
        None => time_left(ends_at, now.get()),
    };
    let open = a.open;
    view! {
        <tr data-testid=format!("auction-{}", a.number)>
            <td><a href=format!("/auctions/{}", a.number)>{a.number.clone()}</a>
                {a.watching.then(|| view! { " " <span class="badge" title="On your watch list">"Watching"</span> })}</td>
            <td>{format!("{} · {}", a.region, a.vintage)}<div class="muted small">{a.seller_name.clone()}</div></td>
            <td class="num">{tonnes(a.quantity_kg)}</td>
            <td class="num">{format_money(a.price, &currency)}
                {a.buy_now_price.map(|b| view! { <div class="muted small">{format!("Buy now {}", format_money(b, &currency))}</div> })}</td>
            <td class="num">{a.bid_count}</td>
            <td>{reserve_label(a.has_reserve, a.reserve_met)}</td>
            <td class="nowrap countdown" class:urgent=move || open && ending_soon(ends_at, now.get())
                data-seconds-left=move || seconds_left(ends_at, now.get())>{left}</td>
            <td>{a.mine.map(|m| view! { <span class=format!("status status-{m}")>{mine_label(&m)}</span> })}</td>
        </tr>
    }
}

fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "sold" => "Sold",
        "no_bids" => "Ended without bids",
        "below_reserve" => "Ended below the reserve",
        _ => "Ended",
    }
}

fn mine_label(mine: &str) -> &'static str {
    match mine {
        "leading" => "Leading",
        "outbid" => "Outbid",
        "won" => "Won",
        _ => "Not won",
    }
}

fn reserve_label(has_reserve: bool, met: bool) -> &'static str {
    match (has_reserve, met) {
        (false, _) => "No reserve",
        (true, true) => "Reserve met",
        (true, false) => "Reserve not met",
    }
}

#[component]
pub fn AuctionPage() -> impl IntoView {
    let params = use_params_map();
    let bid = ServerAction::<PlaceBid>::new();
    let buy_now = ServerAction::<BuyNow>::new();
    let watch = ServerAction::<WatchAuction>::new();
    let detail = Resource::new(
        move || {
            (
                params.read().get("number").unwrap_or_default(),
                bid.version().get(),
                buy_now.version().get(),
                watch.version().get(),
            )
        },
        |(number, ..)| get_auction(number),
    );
    view! {
        <Title text="Auction · EV Carbon Exchange" />
        <p><a href="/auctions">"← Auctions"</a></p>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(d) => view! { <Auction d bid buy_now watch /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Auction(
    d: AuctionDetail,
    bid: ServerAction<PlaceBid>,
    buy_now: ServerAction<BuyNow>,
    watch: ServerAction<WatchAuction>,
) -> impl IntoView {
    let (live, connected) = follow_auction(d.live.clone());
    let now = server_clock(
        d.live.server_now,
        Signal::derive(move || live.with(|l| l.server_now)),
    );
    let currency = d.currency.clone();
    let m = {
        let c = currency.clone();
        move |v| format_money(v, &c)
    };
    let increment = match d.increment {
        Some(step) => format!("{} per bid", m(step)),
        None => increment_table(&m),
    };
    let title = format!(
        "{} · {} of {} {} credits",
        d.live.number,
        tonnes(d.quantity_kg),
        d.region,
        d.vintage
    );
    view! {
        <h1>{title}</h1>
        <div class="columns">
            <section aria-labelledby="facts-heading">
                <h2 id="facts-heading" class="visually-hidden">"Facts"</h2>
                <dl class="facts">
                    <dt>"Lot"</dt><dd>{format!("{} of {} {} credits, sold whole", tonnes(d.quantity_kg), d.region, d.vintage)}</dd>
                    <dt>"Seller"</dt><dd>{d.seller_name.clone()}</dd>
                    <dt>"Starting price"</dt><dd>{format!("{} per t", m(d.starting_price))}</dd>
                    <dt>"Increment"</dt><dd>{increment}</dd>
                    <dt>"Soft close"</dt><dd>{if d.soft_close_secs > 0 {
                        format!("A bid in the last {} moves the end {} later", minutes(d.soft_close_secs), minutes(d.soft_close_secs))
                    } else { "None: it ends on time".to_owned() }}</dd>
                    <dt>"Fees"</dt><dd>{format!("{} paid by the winner, {} by the seller", percent(d.fees.buyer_rate), percent(d.fees.seller_rate))}</dd>
                    <dt>"Listed"</dt><dd>{d.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}</dd>
                </dl>
                {(!d.description.is_empty()).then(|| view! { <p class="description">{d.description.clone()}</p> })}
                {d.order.clone().map(|o| view! {
                    <p class="notice" data-testid="auction-order">"The sale's order: " <a href=format!("/orders/{o}")>{o.clone()}</a></p>
                })}
            </section>
            <LivePanel d=d.clone() live connected now bid buy_now watch />
        </div>
        <h2>"Latest bids"</h2>
        <BidHistory live currency=currency.clone() />
    }
}

/// The default increments in words: "By price level: 1.000 ₫ below 100.000 ₫, …".
fn increment_table(money: &impl Fn(rust_decimal::Decimal) -> String) -> String {
    let mut from = 0;
    let steps: Vec<String> = INCREMENT_TABLE
        .iter()
        .map(|&(below, step)| {
            let step = money(step.into());
            let text = if below == i64::MAX {
                format!("{step} from {}", money(from.into()))
            } else {
                format!("{step} below {}", money(below.into()))
            };
            from = below;
            text
        })
        .collect();
    format!("By price level: {}", steps.join(", "))
}

fn minutes(secs: i64) -> String {
    if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[component]
#[allow(clippy::too_many_arguments)]
fn LivePanel(
    d: AuctionDetail,
    live: ReadSignal<AuctionLive>,
    connected: ReadSignal<bool>,
    now: ReadSignal<DateTime<Utc>>,
    bid: ServerAction<PlaceBid>,
    buy_now: ServerAction<BuyNow>,
    watch: ServerAction<WatchAuction>,
) -> impl IntoView {
    let currency = d.currency.clone();
    let m = {
        let c = currency.clone();
        move |v| format_money(v, &c)
    };
    let my_alias = d.my_alias;
    let status = {
        let m = m.clone();
        move || {
            live.with(|l| match l.outcome.as_deref() {
                Some("sold") => format!(
                    "Sold to Bidder {} at {} per t",
                    l.leader_alias.unwrap_or_default(),
                    m(l.price)
                ),
                Some(o) => outcome_label(o).to_owned(),
                None if l.ends_at <= now.get() => "Closing…".to_owned(),
                None => "Open for bids".to_owned(),
            })
        }
    };
    let high_bid = {
        let m = m.clone();
        move || {
            live.with(|l| {
                if l.bid_count == 0 {
                    format!("{} per t (starting price, no bids yet)", m(l.price))
                } else {
                    format!("{} per t", m(l.price))
                }
            })
        }
    };
    let leader = move || {
        live.with(|l| match l.leader_alias {
            None => "—".to_owned(),
            Some(a) if Some(a) == my_alias => format!("Bidder {a} (you)"),
            Some(a) => format!("Bidder {a}"),
        })
    };
    let left = move || {
        live.with(|l| match &l.outcome {
            Some(_) => "Ended".to_owned(),
            None => time_left(l.ends_at, now.get()),
        })
    };
    let ends = move || {
        live.with(|l| {
            let mut s = format!("Ends {}", l.ends_at.format("%Y-%m-%d %H:%M:%S UTC"));
            if l.extensions > 0 {
                s.push_str(&format!(
                    " · extended {} time{} by late bids",
                    l.extensions,
                    if l.extensions == 1 { "" } else { "s" }
                ));
            }
            s
        })
    };
    let reserve = move || live.with(|l| reserve_label(l.has_reserve, l.reserve_met));
    // The caller's standing, told the moment it changes.
    let had_bid = d.my_max.is_some();
    let my_max = d.my_max;
    let standing = {
        let m = m.clone();
        move || {
            if !had_bid {
                return None;
            }
            live.with(|l| {
                let leads = l.leader_alias.is_some() && l.leader_alias == my_alias;
                Some(match (l.outcome.as_deref(), leads) {
                    (Some("sold"), true) => ("won", "You won this auction.".to_owned()),
                    (Some(_), _) => ("lost", "This auction has ended; your funds are released.".to_owned()),
                    (None, true) => (
                        "leading",
                        format!(
                            "You are the highest bidder (your maximum: {} per t).",
                            my_max.map(&m).unwrap_or_default()
                        ),
                    ),
                    (None, false) => (
                        "outbid",
                        "You have been outbid: your funds are released. Bid again to take the lead.".to_owned(),
                    ),
                })
            })
        }
    };
    let number = d.live.number.clone();
    view! {
        <section class="card live-panel" aria-labelledby="live-heading"
            data-live=move || if connected.get() { "on" } else { "off" }>
            <h2 id="live-heading">"Live"
                <span class="live-dot" class:on=move || connected.get() aria-live="polite">
                    {move || if connected.get() { " · updating live" } else { "" }}
                </span>
            </h2>
            <p class="auction-status" data-testid="auction-status">{status}</p>
            <dl class="facts live">
                <dt>"High bid"</dt><dd class="big" data-testid="high-bid">{high_bid}</dd>
                <dt>"Leader"</dt><dd data-testid="leader">{leader}</dd>
                <dt>"Time left"</dt>
                <dd>
                    <span class="countdown" data-testid="time-left"
                        class:urgent=move || live.with(|l| l.open && ending_soon(l.ends_at, now.get()))
                        data-seconds-left=move || live.with(|l| seconds_left(l.ends_at, now.get()))>{left}</span>
                    <div class="muted small" data-testid="ends-at">{ends}</div>
                </dd>
                <dt>"Bids"</dt><dd data-testid="bid-count">{move || live.with(|l| format!("{} from {} bidder{}", l.bid_count, l.bidder_count, if l.bidder_count == 1 { "" } else { "s" }))}</dd>
                <dt>"Reserve"</dt><dd data-testid="reserve">{reserve}</dd>
            </dl>
            {move || standing().map(|(kind, text)| view! {
                <p class=format!("standing standing-{kind}") role="status" aria-live="assertive" data-testid="my-standing">{text}</p>
            })}
            <BidForms d=d.clone() live bid buy_now />
            <WatchForm number=number.clone() watching=d.watching signed_in=d.viewer.is_some() watch />
        </section>
    }
}

#[component]
fn BidForms(
    d: AuctionDetail,
    live: ReadSignal<AuctionLive>,
    bid: ServerAction<PlaceBid>,
    buy_now: ServerAction<BuyNow>,
) -> impl IntoView {
    let here = format!("/auctions/{}", d.live.number);
    if d.is_own {
        return view! { <p class="muted">"This is your lot: you can watch the bidding here but not bid. "
            <a href="/sell">"Your listings"</a></p> }
        .into_any();
    }
    match d.viewer {
        None => {
            let login = format!("/login?next={}", urlencode(&here));
            return view! {
                <p><a href=login class="button">"Sign in to bid"</a></p>
                <p class="muted">"New here? " <a href="/signup">"Create a buyer account"</a> "."</p>
            }
            .into_any();
        }
        Some(Role::Buyer) => {}
        Some(_) => {
            return view! { <p class="muted">"Bidding is for buyer accounts."</p> }.into_any()
        }
    }
    let error = error_of(*bid);
    let buy_error = error_of(*buy_now);
    let currency = d.currency.clone();
    let (max, set_max) = signal(String::new());
    let (start, step, qty, fees) = (
        d.starting_price,
        d.increment.map_or(Increment::Table, Increment::Fixed),
        d.quantity_kg,
        d.fees,
    );
    let (my_alias, my_max, wallet) = (d.my_alias, d.my_max, d.wallet_available);
    // The same checks the server makes, as you type.
    let feedback = {
        let currency = currency.clone();
        move || -> (bool, String) {
            let money = |v| format_money(v, &currency);
            let raw = max.get();
            live.with(|l| {
                if !l.open {
                    return (false, "Bidding has ended.".to_owned());
                }
                let minimum = format!("Enter {} or more per tonne.", money(l.minimum_bid));
                if raw.trim().is_empty() {
                    return (false, minimum);
                }
                let value = match parse_money(&raw, &currency) {
                    Ok(v) => v,
                    Err(e) => return (false, e),
                };
                let own = my_max.filter(|_| l.leader_alias.is_some() && l.leader_alias == my_alias);
                if let Err(p) = check_bid(start, step, l.price, l.leader_alias.is_some(), own, value) {
                    return (false, p.message(money));
                }
                let commits = Settlement::new(value, qty, fees).buyer_pays;
                match wallet {
                    Some(w) if w < commits => (
                        false,
                        format!(
                            "Read as {} per tonne: this bid commits up to {} and your wallet has {} available.",
                            money(value),
                            money(commits),
                            money(w)
                        ),
                    ),
                    _ => (
                        true,
                        format!(
                            "Read as {} per tonne: commits up to {} (the whole lot at your maximum, with the fee) while you lead.",
                            money(value),
                            money(commits)
                        ),
                    ),
                }
            })
        }
    };
    let feedback = Memo::new(move |_| feedback());
    let number = d.live.number.clone();
    let key = d.bid_key.clone();
    let buy_key = format!("{}-buy", d.bid_key);
    let wallet_line =
        wallet.map(|w| format!("Your wallet: {} available", format_money(w, &currency)));
    let buy_now_price = move || live.with(|l| l.buy_now_price.filter(|_| l.open));
    let currency_b = currency.clone();
    let number_b = number.clone();
    let confirm = price_to_confirm(error);
    let currency_c = currency.clone();
    view! {
        {move || confirm.get().map(|c| {
            let label = format!("Bid {} per t anyway", format_money(c.price_per_t, &currency_c));
            view! {
                <ActionForm action=bid attr:class="confirm-price" attr:data-testid="confirm-bid">
                    <ConfirmFields confirm=c />
                    <button type="submit" class="button">{label}</button>
                </ActionForm>
            }
        })}
        <ActionForm action=bid attr:class="stack" attr:data-testid="bid-form">
            <FormError error />
            <input type="hidden" name="auction" value=number.clone() />
            <input type="hidden" name="idempotency_key" value=key />
            <div class="field" class:invalid=move || error.get().and_then(|e| e.field("max")).is_some()>
                <label for="bid-max">"Your maximum per tonne"</label>
                <input id="bid-max" name="max" inputmode="decimal" required autocomplete="off"
                    on:input=move |ev| set_max.set(event_target_value(&ev))
                    aria-describedby="bid-feedback bid-max-error" />
                <small class="hint" id="bid-feedback" aria-live="polite" data-testid="bid-feedback"
                    class:problem=move || !feedback.get().0 && !max.get().trim().is_empty()>{move || feedback.get().1}</small>
                {wallet_line.map(|w| view! { <small class="hint">{w}</small> })}
                <p class="field-error" id="bid-max-error">{move || error.get().and_then(|e| e.field("max"))}</p>
            </div>
            <RetireFields prefix="bid" error />
            <Submit action=*bid label="Place bid" busy="Placing bid…" />
        </ActionForm>
        {move || buy_now_price().map({
            let (currency_b, number_b, buy_key) = (currency_b.clone(), number_b.clone(), buy_key.clone());
            move |price| {
            let label = format!("Buy now for {} per t", format_money(price, &currency_b));
            let total = Settlement::new(price, qty, fees).buyer_pays;
            view! {
                <ActionForm action=buy_now attr:class="stack buy-now" attr:data-testid="buy-now-form">
                    <FormError error=buy_error />
                    <input type="hidden" name="auction" value=number_b.clone() />
                    <input type="hidden" name="expected_price" value=crate::domain::trade::money(price).to_string() />
                    <input type="hidden" name="idempotency_key" value=buy_key.clone() />
                    <p class="muted small">{format!("Ends the auction at once: you pay {} with the fee.", format_money(total, &currency_b))}</p>
                    <RetireFields prefix="buy" error=buy_error />
                    <button type="submit" class="button secondary">{label}</button>
                </ActionForm>
            }
        }})}
    }
    .into_any()
}

/// "Retire at once if I win": the beneficiary and reason go with the bid.
#[component]
fn RetireFields(
    prefix: &'static str,
    error: Signal<Option<crate::error::AppError>>,
) -> impl IntoView {
    let (on, set_on) = signal(false);
    let (b_id, r_id) = (format!("{prefix}-beneficiary"), format!("{prefix}-reason"));
    view! {
        <label class="check">
            <input type="checkbox" name="retire" value="on" on:change=move |ev| set_on.set(event_target_checked(&ev)) />
            " If I win, retire the credits at once (you get a certificate)"
        </label>
        <div class="retire-fields" class:muted=move || !on.get()>
            <div class="field" class:invalid=move || error.get().and_then(|e| e.field("beneficiary")).is_some()>
                <label for=b_id.clone()>"Beneficiary (if retiring)"</label>
                <input id=b_id name="beneficiary" />
                <p class="field-error">{move || error.get().and_then(|e| e.field("beneficiary"))}</p>
            </div>
            <div class="field" class:invalid=move || error.get().and_then(|e| e.field("reason")).is_some()>
                <label for=r_id.clone()>"Reason (if retiring)"</label>
                <input id=r_id name="reason" />
                <p class="field-error">{move || error.get().and_then(|e| e.field("reason"))}</p>
            </div>
        </div>
    }
}

#[component]
fn WatchForm(
    number: String,
    watching: bool,
    signed_in: bool,
    watch: ServerAction<WatchAuction>,
) -> impl IntoView {
    signed_in.then(|| {
        view! {
            <ActionForm action=watch attr:class="inline watch">
                <input type="hidden" name="auction" value=number />
                <input type="hidden" name="watch" value=if watching { "off" } else { "on" } />
                <button type="submit" class="button small secondary" data-testid="watch">
                    {if watching { "Stop watching" } else { "Watch this auction" }}
                </button>
            </ActionForm>
        }
    })
}

#[component]
fn BidHistory(live: ReadSignal<AuctionLive>, currency: String) -> impl IntoView {
    move || {
        let recent = live.with(|l| l.recent.clone());
        if recent.is_empty() {
            return view! { <p class="muted" data-testid="bid-history">"No bids yet."</p> }
                .into_any();
        }
        let currency = currency.clone();
        view! {
            <div class="table-wrap"><table class="data" data-testid="bid-history">
                <thead><tr>
                    <th scope="col">"When (UTC)"</th><th scope="col">"Bidder"</th><th scope="col" class="num">"Price after"</th>
                    <th scope="col">"Note"</th>
                </tr></thead>
                <tbody>
                    {recent.into_iter().map(|b| {
                        let mut note = Vec::new();
                        if b.kind == "buy_now" { note.push("Bought now".to_owned()); }
                        else if b.leading { note.push("Leading".to_owned()); }
                        else { note.push("Outbid at once by the leader's maximum".to_owned()); }
                        if let Some(to) = b.extended_to { note.push(format!("end moved to {}", to.format("%H:%M:%S"))); }
                        view! {
                            <tr>
                                <td class="nowrap">{b.at.format("%H:%M:%S").to_string()}</td>
                                <td>{format!("Bidder {}", b.alias)}</td>
                                <td class="num">{format_money(b.price, &currency)}</td>
                                <td>{note.join("; ")}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table></div>
        }.into_any()
    }
}
