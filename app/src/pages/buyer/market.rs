//! The marketplace search: every filter lives in the URL, so a search can be bookmarked and
//! shared, and the page renders on the server without JavaScript.

use crate::api::market::{search_listings, ListingLine};
use crate::domain::market::{format_money, tonnes, MarketQuery, Sort};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn MarketPage() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).filter(|v| !v.is_empty());
    let results = Resource::new(
        move || {
            [
                "q",
                "region",
                "vintage",
                "type",
                "seller",
                "min_qty",
                "min_price",
                "max_price",
                "sort",
                "page",
            ]
            .map(|k| q(k))
        },
        |[text, region, vintage, kind, seller, min_qty, min_price, max_price, sort, page]| {
            search_listings(
                text, region, vintage, kind, seller, min_qty, min_price, max_price, sort, page,
            )
        },
    );
    let value = move |k: &'static str| move || q(k).unwrap_or_default();
    view! {
        <Title text="Marketplace · EV Carbon Exchange" />
        <h1>"Marketplace"</h1>
        <p class="muted">"Verified credits from electric driving. 1 credit = 1 tonne of CO₂ avoided; buy any quantity from 1 kg up to what a listing has left."</p>
        <form method="get" action="/market" class="filters market-filters" role="search">
            <div class="field wide">
                <label for="m-q">"Search"</label>
                <input id="m-q" name="q" type="search" placeholder="Listing number, words in the description, seller" value=value("q") />
            </div>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let (regions, vintages) = match results.await {
                        Ok(r) => (r.regions, r.vintages),
                        Err(_) => (Vec::new(), Vec::new()),
                    };
                    view! {
                        <div class="field">
                            <label for="m-region">"Region"</label>
                            <select id="m-region" name="region">
                                <option value="">"Any"</option>
                                {regions.into_iter().map(|r| {
                                    let selected = q("region").as_deref() == Some(r.as_str());
                                    view! { <option value=r.clone() selected=selected>{r.clone()}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                        <div class="field">
                            <label for="m-vintage">"Vintage"</label>
                            <select id="m-vintage" name="vintage">
                                <option value="">"Any"</option>
                                {vintages.into_iter().map(|v| {
                                    let selected = q("vintage") == Some(v.to_string());
                                    view! { <option value=v.to_string() selected=selected>{v}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                    }
                })}
            </Transition>
            <div class="field">
                <label for="m-type">"Type"</label>
                <select id="m-type" name="type">
                    <option value="">"Any"</option>
                    <option value="fixed" selected=move || q("type").as_deref() == Some("fixed")>"Fixed price"</option>
                    <option value="auction" selected=move || q("type").as_deref() == Some("auction")>"Auction"</option>
                </select>
            </div>
            <div class="field">
                <label for="m-seller">"Seller"</label>
                <input id="m-seller" name="seller" value=value("seller") />
            </div>
            <div class="field">
                <label for="m-min-qty">"At least (t)"</label>
                <input id="m-min-qty" name="min_qty" inputmode="decimal" size="8" value=value("min_qty") />
            </div>
            <div class="field">
                <label for="m-min-price">"Price from (per t)"</label>
                <input id="m-min-price" name="min_price" inputmode="decimal" size="10" value=value("min_price") />
            </div>
            <div class="field">
                <label for="m-max-price">"Price to (per t)"</label>
                <input id="m-max-price" name="max_price" inputmode="decimal" size="10" value=value("max_price") />
            </div>
            <div class="field">
                <label for="m-sort">"Sort"</label>
                <select id="m-sort" name="sort">
                    {Sort::ALL.into_iter().map(|s| view! {
                        <option value=s.as_str() selected=move || q("sort").as_deref().unwrap_or("price") == s.as_str()>{s.label()}</option>
                    }).collect_view()}
                </select>
            </div>
            <button type="submit" class="button">"Search"</button>
            <a href="/market" class="button secondary">"Clear"</a>
        </form>
        <Transition fallback=|| view! { <p class="loading" role="status">"Searching…"</p> }>
            {move || Suspend::new(async move {
                match results.await {
                    Err(AppError::Invalid { fields }) => view! {
                        <div class="form-error" role="alert">
                            <p>"This search cannot run:"</p>
                            <ul>{fields.into_iter().map(|f| view! { <li>{f.message}</li> }).collect_view()}</ul>
                        </div>
                    }.into_any(),
                    Err(error) => view! { <crate::components::errors::ErrorPanel error /> }.into_any(),
                    Ok(r) if r.listings.is_empty() => view! {
                        <p class="notice" role="status" data-testid="market-count">"No open listing matches this search."</p>
                    }.into_any(),
                    Ok(r) => {
                        let params: std::collections::BTreeMap<String, String> = query.read_untracked().clone().into_iter().map(|(k, v)| (k.into_owned(), v)).collect();
                        let current = MarketQuery::parse(&params, &r.currency).unwrap_or_default();
                        let count = if r.capped {
                            "More than 1,000 listings".to_owned()
                        } else {
                            format!("{} listing{}", r.total, if r.total == 1 { "" } else { "s" })
                        };
                        let (page, has_next) = (r.page, r.has_next);
                        let prev = (page > 1).then(|| format!("/market?{}", current.to_query(page - 1)));
                        let next = has_next.then(|| format!("/market?{}", current.to_query(page + 1)));
                        view! {
                            <p class="muted" role="status" data-testid="market-count">{count}</p>
                            <ListingTable listings=r.listings currency=r.currency />
                            <nav class="pagination" aria-label="Result pages">
                                {prev.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}
                                <span>{format!("Page {page}")}</span>
                                {next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn ListingTable(listings: Vec<ListingLine>, currency: String) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="data" data-testid="listings">
            <thead><tr>
                <th scope="col">"Listing"</th><th scope="col">"Credits"</th><th scope="col" class="num">"Available"</th>
                <th scope="col" class="num">"Price per t"</th><th scope="col" class="num">"Min. lot"</th>
                <th scope="col">"Seller"</th><th scope="col">"Ends"</th>
            </tr></thead>
            <tbody>
                {listings.into_iter().map(|l| view! {
                    <tr>
                        <td><a href=if l.kind == "auction" { format!("/auctions/{}", l.number) } else { format!("/market/{}", l.number) }>{l.number.clone()}</a>
                            {(l.kind == "auction").then(|| view! { " " <span class="badge">"Auction"</span> })}
                            <div class="muted small">{l.description.chars().take(80).collect::<String>()}</div></td>
                        <td>{format!("{} · {}", l.region, l.vintage)}</td>
                        <td class="num">{tonnes(l.available_kg)}</td>
                        <td class="num">{format_money(l.price_per_t, &currency)}</td>
                        <td class="num">{tonnes(l.min_lot_kg)}</td>
                        <td>{l.seller_name}</td>
                        <td class="nowrap">{l.expires_at.map(|e| e.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "—".into())}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table></div>
    }
}
