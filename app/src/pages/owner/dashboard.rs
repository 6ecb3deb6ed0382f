//! The owner's CO₂ dashboard: totals, a chart of CO₂ avoided by day / month / year, and the
//! same numbers in a table beside it. The period and vehicle are in the URL.

use crate::api::dashboard::{owner_dashboard, Dashboard};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::paging::VehicleSelect;
use crate::domain::period::Grain;
use crate::domain::user::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn DashboardPage() -> impl IntoView {
    view! {
        <Title text="CO₂ dashboard · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner]>
            <OwnerDashboard />
        </RequireRole>
    }
}

#[component]
fn OwnerDashboard() -> impl IntoView {
    let query = use_query_map();
    let by = move || query.read().get("by").unwrap_or_else(|| "month".into());
    let vehicle = move || query.read().get("vehicle").unwrap_or_default();
    let data = Resource::new(
        move || (by(), vehicle()),
        |(by, vehicle)| owner_dashboard(Some(by), Some(vehicle)),
    );
    view! {
        <h1>"CO₂ avoided by your driving"</h1>
        <form method="get" action="/dashboard" class="filters" role="search">
            <div class="field">
                <label for="dash-by">"Period"</label>
                <select id="dash-by" name="by">
                    {Grain::ALL.into_iter().map(|g| view! {
                        <option value=g.as_str() selected=move || by() == g.as_str()>{g.label()}</option>
                    }).collect_view()}
                </select>
            </div>
            <VehicleSelect id="dash-vehicle" name="vehicle" selected=Signal::derive(vehicle) archived=true />
            <button type="submit" class="button">"Show"</button>
        </form>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(d) => view! { <DashboardView d /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let grain_label = d.grain.label();
    let svg = d.chart_svg.clone();
    view! {
        <dl class="stats">
            <div><dt>"CO₂ avoided, all time"</dt><dd data-testid="total-avoided">{format!("{:.1} kg", d.total_avoided_kg)}</dd></div>
            <div><dt>"Credit equivalent"</dt><dd data-testid="credit-equivalent">{format!("{} t", d.credit_equivalent)}</dd></div>
            <div><dt>"Distance"</dt><dd data-testid="total-distance">{format!("{:.0} km", d.total_distance_km)}</dd></div>
            <div><dt>"Energy"</dt><dd>{format!("{:.0} kWh", d.total_energy_kwh)}</dd></div>
            <div><dt>"Trips"</dt><dd data-testid="total-trips">{d.total_trips}</dd></div>
        </dl>
        <p class="actions">
            <a class="button secondary small" href=d.export_url.clone() download>"Download these numbers (CSV)"</a>" "
            <a class="button secondary small" href=d.trips_export_url.clone() download>"Download all trips (CSV)"</a>
        </p>
        <p class="muted">"Figures as computed when each trip was imported. New imports use "{d.methodology.clone()}". A credit is one tonne; the buffer share is set aside at issuance."</p>
        <div class="chart-and-table">
            // The SVG is drawn by our own server code from numbers only; no user text is in it.
            <figure class="chart" role="img" aria-label=format!("Bar chart of CO₂ avoided, {}", grain_label.to_lowercase()) inner_html=svg></figure>
            <div class="table-wrap">
                <table class="data dashboard-table">
                    <caption class="visually-hidden">{format!("CO₂ avoided, {}", grain_label.to_lowercase())}</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Period"</th>
                            <th scope="col" class="num">"Trips"</th>
                            <th scope="col" class="num">"km"</th>
                            <th scope="col" class="num">"kWh"</th>
                            <th scope="col" class="num">"kg CO₂"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {d.buckets.into_iter().rev().map(|b| view! {
                            <tr>
                                <th scope="row">{b.label}</th>
                                <td class="num">{b.trips}</td>
                                <td class="num">{format!("{:.1}", b.distance_km)}</td>
                                <td class="num">{format!("{:.1}", b.energy_kwh)}</td>
                                <td class="num">{format!("{:.1}", b.avoided_kg)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </div>
    }
}
