//! Trips: filter by vehicle, local dates and anomaly flags; page through; edit or delete a
//! trip that is not part of a credit request (claimed trips are read-only in the database).

use crate::api::trips::{list_trips, period_checks, DeleteTrip, Trip, TripPage, UpdateTrip};
use crate::components::auth::{urlencode, RequireRole};
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, FormError};
use crate::components::paging::Pager;
use crate::components::paging::VehicleSelect;
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn TripsPage() -> impl IntoView {
    view! {
        <Title text="Trips · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner]>
            <Trips />
        </RequireRole>
    }
}

#[derive(Clone, Copy)]
struct Actions {
    update: ServerAction<UpdateTrip>,
    delete: ServerAction<DeleteTrip>,
}

#[component]
fn Trips() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let actions = Actions {
        update: ServerAction::new(),
        delete: ServerAction::new(),
    };
    let trips = Resource::new(
        move || {
            (
                q("vehicle"),
                q("from"),
                q("to"),
                q("flagged"),
                q("page"),
                actions.update.version().get(),
                actions.delete.version().get(),
            )
        },
        |(vehicle, from, to, flagged, page, ..)| {
            list_trips(
                Some(vehicle),
                Some(from),
                Some(to),
                Some(flagged),
                Some(page),
            )
        },
    );
    let error = Signal::derive(move || {
        error_of(*actions.update)
            .get()
            .or_else(|| error_of(*actions.delete).get())
    });
    view! {
        <h1>"Trips"</h1>
        <form method="get" action="/trips" class="filters" role="search">
            <VehicleSelect id="trips-vehicle" name="vehicle" selected=Signal::derive(move || q("vehicle")) archived=true />
            <div class="field">
                <label for="trips-from">"From"</label>
                <input id="trips-from" type="date" name="from" value=move || q("from") />
            </div>
            <div class="field">
                <label for="trips-to">"To"</label>
                <input id="trips-to" type="date" name="to" value=move || q("to") />
            </div>
            <label class="choice">
                <input type="checkbox" name="flagged" value="true" checked=move || q("flagged") == "true" />
                " Flagged only"
            </label>
            <button type="submit" class="button">"Filter"</button>
        </form>
        <FormError error />
        <PeriodChecks />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match trips.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(page) if page.total == 0 => view! {
                        <p class="notice">"No trips match. " <a href="/import">"Import a file"</a> " to add some."</p>
                    }.into_any(),
                    Ok(page) => view! { <TripTable page actions /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The checks over the whole filtered period, for one vehicle (they compare trips with each
/// other, so they need one vehicle's trips together).
#[component]
fn PeriodChecks() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let checks = Resource::new(
        move || (q("vehicle"), q("from"), q("to")),
        |(vehicle, from, to)| async move {
            if vehicle.is_empty() {
                None
            } else {
                Some(period_checks(vehicle, Some(from), Some(to)).await)
            }
        },
    );
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match checks.await {
                    None => view! {
                        <p class="muted">"Choose a vehicle to run the checks over the whole period too (long days, odometer gaps, unusual places, volume jumps, identical trips)."</p>
                    }.into_any(),
                    Some(Err(error)) => view! { <ErrorPanel error /> }.into_any(),
                    Some(Ok(r)) if !r.checked => view! {
                        <p class="notice" data-testid="period-checks">{format!(
                            "More than {} trips in this period: choose a shorter period to run the checks over the whole period.",
                            r.limit
                        )}</p>
                    }.into_any(),
                    Some(Ok(r)) if r.flags.is_empty() => view! {
                        <p class="notice ok" data-testid="period-checks">{format!(
                            "Checks over the period's {} trip{}: nothing unusual.",
                            r.trips,
                            if r.trips == 1 { "" } else { "s" }
                        )}</p>
                    }.into_any(),
                    Some(Ok(r)) => view! {
                        <section class="card period-checks" data-testid="period-checks" aria-labelledby="period-checks-title">
                            <h2 id="period-checks-title">{format!(
                                "Checks over the period's {} trips: {} finding{}",
                                r.trips,
                                r.flags.len(),
                                if r.flags.len() == 1 { "" } else { "s" }
                            )}</h2>
                            <p class="muted">"A verifier sees these with a credit request; they do not stop an import."</p>
                            <ul>
                                {r.flags.into_iter().map(|f| view! {
                                    <li><span class="badge warn">{f.code.replace('_', " ")}</span>" "{f.message}</li>
                                }).collect_view()}
                            </ul>
                        </section>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TripTable(page: TripPage, actions: Actions) -> impl IntoView {
    let query = use_query_map();
    let link = move |p: i64| {
        let m = query.read_untracked();
        let keep: String = ["vehicle", "from", "to", "flagged"]
            .iter()
            .filter_map(|k| {
                m.get(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={}&", urlencode(&v)))
            })
            .collect();
        format!("/trips?{keep}page={p}")
    };
    let (current, pages, total) = (page.page, page.pages, page.total);
    let export = {
        let m = query.read_untracked();
        let keep: Vec<String> = [
            ("vehicle", "vehicle_id"),
            ("from", "from"),
            ("to", "to"),
            ("flagged", "flagged"),
        ]
        .iter()
        .filter_map(|(k, name)| {
            m.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{name}={}", urlencode(&v)))
        })
        .collect();
        format!("/api/trips/export?{}", keep.join("&"))
    };
    view! {
        <p class="muted" role="status">
            <span data-testid="trip-count">{format!("{total} trip{}", if total == 1 { "" } else { "s" })}</span>
            " · "
            <a href=export download>"Download them as CSV"</a>
        </p>
        <div class="table-wrap">
            <table class="data trips">
                <thead>
                    <tr>
                        <th scope="col">"Vehicle"</th>
                        <th scope="col">"Start (local)"</th>
                        <th scope="col">"End"</th>
                        <th scope="col" class="num">"km"</th>
                        <th scope="col" class="num">"kWh"</th>
                        <th scope="col" class="num">"kg CO₂"</th>
                        <th scope="col">"Flags"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {page.trips.into_iter().map(|t| view! { <TripRow t actions /> }).collect_view()}
                </tbody>
            </table>
        </div>
        <Pager page=current pages=pages href=link newest_first=true />
    }
}

#[component]
fn TripRow(t: Trip, actions: Actions) -> impl IntoView {
    let id = t.id.to_string();
    let row_id = id.clone();
    let flags = t
        .flags
        .iter()
        .map(|f| f.replace('_', " "))
        .collect::<Vec<_>>();
    let flagged = !flags.is_empty();
    let energy = t
        .energy_kwh
        .map(|e| e.to_string())
        .unwrap_or_else(|| "—".into());
    let (start_shown, end_shown) = (
        t.local_start.replace('T', " "),
        t.local_end.replace('T', " "),
    );
    let controls = if t.claimed {
        view! { <span class="badge" title="Part of a credit request">"🔒 In a credit request"</span> }.into_any()
    } else {
        let delete_id = id.clone();
        view! {
            <details class="row-action">
                <summary>"Edit"</summary>
                <ActionForm action=actions.update attr:class="trip-edit">
                    <input type="hidden" name="trip_id" value=id.clone() />
                    <label>"Start" <input type="datetime-local" name="start_time" value=t.local_start.clone() /></label>
                    <label>"End" <input type="datetime-local" name="end_time" value=t.local_end.clone() /></label>
                    <label>"km" <input name="distance_km" inputmode="decimal" value=t.distance_km.to_string() /></label>
                    <label>"kWh" <input name="energy_kwh" inputmode="decimal" value=t.energy_kwh.map(|e| e.to_string()).unwrap_or_default() /></label>
                    <label>"Notes" <input name="notes" value=t.notes.clone().unwrap_or_default() /></label>
                    <button type="submit" class="button small">"Save"</button>
                </ActionForm>
            </details>
            <details class="row-action">
                <summary>"Delete"</summary>
                <ActionForm action=actions.delete attr:class="inline">
                    <input type="hidden" name="trip_id" value=delete_id />
                    <button type="submit" class="button small danger">"Delete this trip"</button>
                </ActionForm>
            </details>
        }
        .into_any()
    };
    view! {
        <tr data-trip=row_id class:flagged=flagged>
            <td class="nowrap">{t.plate.clone()}</td>
            <td class="nowrap">{start_shown}</td>
            <td class="nowrap">{end_shown}</td>
            <td class="num">{t.distance_km.to_string()}</td>
            <td class="num">{energy}</td>
            <td class="num">{format!("{:.2}", t.avoided_kg)}</td>
            <td>{flags.into_iter().map(|f| view! { <span class="badge warn">{f}</span> }).collect_view()}</td>
            <td>{controls}</td>
        </tr>
    }
}
