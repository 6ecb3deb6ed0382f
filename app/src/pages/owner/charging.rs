//! Charging sessions: what the charger operators metered, per vehicle and period. ENERGY-2025
//! prefers this energy to the estimate from distance.

use crate::api::charging::{list_charging, ChargingPage};
use crate::components::auth::{urlencode, RequireRole};
use crate::components::errors::ErrorPanel;
use crate::components::paging::Pager;
use crate::components::paging::VehicleSelect;
use crate::domain::user::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ChargingPage() -> impl IntoView {
    view! {
        <Title text="Charging sessions · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner]>
            <Charging />
        </RequireRole>
    }
}

#[component]
fn Charging() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let sessions = Resource::new(
        move || (q("vehicle"), q("from"), q("to"), q("page")),
        |(vehicle, from, to, page)| list_charging(Some(vehicle), Some(from), Some(to), Some(page)),
    );
    view! {
        <h1>"Charging sessions"</h1>
        <p class="muted">
            "Energy metered by charger operators. The energy-based methodology prefers it to the estimate from distance for the same period. "
            <a href="/import?kind=charging">"Import a charging export"</a>
        </p>
        <form method="get" action="/charging" class="filters" role="search">
            <VehicleSelect id="charging-vehicle" name="vehicle" selected=Signal::derive(move || q("vehicle")) archived=true />
            <div class="field">
                <label for="charging-from">"From"</label>
                <input id="charging-from" type="date" name="from" value=move || q("from") />
            </div>
            <div class="field">
                <label for="charging-to">"To"</label>
                <input id="charging-to" type="date" name="to" value=move || q("to") />
            </div>
            <button type="submit" class="button">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match sessions.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(page) if page.total == 0 => view! {
                        <p class="notice">"No charging sessions match. " <a href="/import?kind=charging">"Import a charging export"</a> " to add some."</p>
                    }.into_any(),
                    Ok(page) => view! { <SessionTable page /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn SessionTable(page: ChargingPage) -> impl IntoView {
    let query = use_query_map();
    let link = move |p: i64| {
        let m = query.read_untracked();
        let keep: String = ["vehicle", "from", "to"]
            .iter()
            .filter_map(|k| {
                m.get(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={}&", urlencode(&v)))
            })
            .collect();
        format!("/charging?{keep}page={p}")
    };
    let (current, pages, total) = (page.page, page.pages, page.total);
    view! {
        <p class="muted" role="status">
            <span data-testid="session-count">{format!("{total} session{}", if total == 1 { "" } else { "s" })}</span>
            " · "
            <span data-testid="session-kwh">{format!("{} kWh metered", page.total_kwh)}</span>
        </p>
        <div class="table-wrap">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Vehicle"</th>
                        <th scope="col">"Session"</th>
                        <th scope="col">"Charger"</th>
                        <th scope="col">"Start (local)"</th>
                        <th scope="col">"End"</th>
                        <th scope="col" class="num">"kWh"</th>
                        <th scope="col">"Status"</th>
                    </tr>
                </thead>
                <tbody>
                    {page.sessions.into_iter().map(|s| view! {
                        <tr>
                            <td class="nowrap">{s.plate}</td>
                            <td><code>{s.session_id}</code></td>
                            <td>{s.charger_id}</td>
                            <td class="nowrap">{s.local_start}</td>
                            <td class="nowrap">{s.local_end}</td>
                            <td class="num">{s.energy_kwh.to_string()}</td>
                            <td>{if s.claimed { "🔒 In a credit request" } else { "Available" }}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pager page=current pages=pages href=link newest_first=true />
    }
}
