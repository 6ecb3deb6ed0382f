//! Vehicles: the owner's list, registering a car, editing and archiving it.

use crate::api::vehicles::{
    get_vehicle, list_vehicles, vehicle_options, ArchiveVehicle, RegisterVehicle, UpdateVehicle,
    Vehicle, VehicleChoices,
};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use crate::domain::user::Role;
use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

const OWNER: &[Role] = &[Role::EvOwner];

#[component]
pub fn VehiclesPage() -> impl IntoView {
    view! {
        <Title text="Vehicles · EV Carbon Exchange" />
        <RequireRole roles=OWNER>
            <Vehicles />
        </RequireRole>
    }
}

#[component]
fn Vehicles() -> impl IntoView {
    let register = ServerAction::<RegisterVehicle>::new();
    let archive = ServerAction::<ArchiveVehicle>::new();
    let vehicles = Resource::new(
        move || (register.version().get(), archive.version().get()),
        |_| list_vehicles(Some("true".into())),
    );
    let choices = Resource::new(|| (), |_| vehicle_options());
    let error = error_of(*register);
    view! {
        <h1>"Your vehicles"</h1>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match vehicles.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="notice">"No vehicle yet. Register your first one below, then import its trips."</p>
                    }.into_any(),
                    Ok(list) => view! { <VehicleTable list archive /> }.into_any(),
                }
            })}
        </Transition>
        <section class="card" aria-labelledby="register-heading">
            <h2 id="register-heading">"Register a vehicle"</h2>
            <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match choices.await {
                        Err(error) => view! { <div class="form-error" role="alert">{error.to_string()}</div> }.into_any(),
                        Ok(choices) => view! {
                            <ActionForm action=register attr:class="grid two">
                                <FormError error />
                                <VehicleFields error vehicle=None choices />
                                <div class="form-actions">
                                    <Submit action=*register label="Register vehicle" busy="Registering…" />
                                </div>
                            </ActionForm>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn VehicleTable(list: Vec<Vehicle>, archive: ServerAction<ArchiveVehicle>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Vehicle"</th>
                        <th scope="col">"VIN"</th>
                        <th scope="col" class="num">"Battery"</th>
                        <th scope="col" class="num">"Efficiency"</th>
                        <th scope="col">"Grid"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    {list.into_iter().map(|v| {
                        let archived = v.archived_at.is_some();
                        let id = v.id.to_string();
                        view! {
                            <tr class:suspended=archived data-vin=v.vin.clone()>
                                <td><a href=format!("/vehicles/{id}")>{v.label()}</a></td>
                                <td><code>{v.vin.clone()}</code></td>
                                <td class="num">{format!("{} kWh", v.battery_kwh)}</td>
                                <td class="num">{format!("{} kWh/100 km", v.efficiency_kwh_per_100km)}</td>
                                <td>{v.grid_region.clone()}</td>
                                <td>{if archived { view! { <span class="badge warn">"Archived"</span> } } else { view! { <span class="badge ok">"Active"</span> } }}</td>
                                <td>
                                    <ActionForm action=archive attr:class="inline">
                                        <input type="hidden" name="vehicle_id" value=id.clone() />
                                        <input type="hidden" name="archived" value=if archived { "false" } else { "true" } />
                                        <button type="submit" class="button small secondary">{if archived { "Restore" } else { "Archive" }}</button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// The fields shared by the register and edit forms, pre-filled from `vehicle` when editing.
/// The choices come in as data: a resource created here, inside the page's Suspend, would get
/// a different hydration id on the server than in the browser (see `RequireRole`).
#[component]
fn VehicleFields(
    error: Signal<Option<AppError>>,
    vehicle: Option<Vehicle>,
    choices: VehicleChoices,
) -> impl IntoView {
    let v = vehicle.clone();
    let value = move |f: fn(&Vehicle) -> String| v.as_ref().map(f);
    let region = vehicle
        .as_ref()
        .map(|v| v.grid_region.clone())
        .unwrap_or_else(|| "VN".into());
    let zone = vehicle
        .as_ref()
        .map(|v| v.time_zone.clone())
        .unwrap_or_else(|| "Asia/Ho_Chi_Minh".into());
    let field_error = move |name: &'static str| move || error.get().and_then(|e| e.field(name));
    view! {
        <Field label="Make" name="make" error value=value(|v| v.make.clone()).unwrap_or_default() />
        <Field label="Model" name="model" error value=value(|v| v.model.clone()).unwrap_or_default() />
        <Field label="Model year" name="year" error inputmode="numeric" value=value(|v| v.year.to_string()).unwrap_or_default() />
        <Field label="VIN" name="vin" error hint="17 characters, on the windscreen or the registration papers." value=value(|v| v.vin.clone()).unwrap_or_default() />
        <Field label="Licence plate" name="plate" error value=value(|v| v.plate.clone()).unwrap_or_default() />
        <Field label="Battery (kWh)" name="battery_kwh" error inputmode="decimal" value=value(|v| v.battery_kwh.to_string()).unwrap_or_default() />
        <Field label="Efficiency (kWh/100 km)" name="efficiency_kwh_per_100km" error inputmode="decimal" hint="Used when a trip has no measured energy." value=value(|v| v.efficiency_kwh_per_100km.to_string()).unwrap_or_default() />
        <div class="field">
            <label for="field-grid_region">"Grid region"</label>
            <select id="field-grid_region" name="grid_region">
                {choices.grid_regions.into_iter().map(|r| {
                    let selected = r == region;
                    view! { <option value=r.clone() selected=selected>{r.clone()}</option> }
                }).collect_view()}
            </select>
            <p class="field-error">{field_error("grid_region")}</p>
        </div>
        <div class="field">
            <label for="field-time_zone">"Time zone"</label>
            <input id="field-time_zone" name="time_zone" list="time-zones" value=zone />
            <datalist id="time-zones">
                {choices.time_zones.into_iter().map(|z| view! { <option value=z /> }).collect_view()}
            </datalist>
            <small class="hint">"Local times in imported files are read in this zone."</small>
            <p class="field-error">{field_error("time_zone")}</p>
        </div>
    }
}

#[component]
pub fn VehiclePage() -> impl IntoView {
    view! {
        <Title text="Vehicle · EV Carbon Exchange" />
        <RequireRole roles=OWNER>
            <EditVehicle />
        </RequireRole>
    }
}

#[component]
fn EditVehicle() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let update = ServerAction::<UpdateVehicle>::new();
    let vehicle = Resource::new(
        move || (id(), update.version().get()),
        |(id, _)| get_vehicle(id),
    );
    // Created with the vehicle, not inside its Suspend (see `VehicleFields`).
    let choices = Resource::new(|| (), |_| vehicle_options());
    let error = error_of(*update);
    let saved = succeeded(*update);
    view! {
        <p><a href="/vehicles">"← All vehicles"</a></p>
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match (vehicle.await, choices.await) {
                    (Err(error), _) | (_, Err(error)) => view! { <ErrorPanel error /> }.into_any(),
                    (Ok(v), Ok(choices)) => {
                        let label = v.label();
                        let id = v.id.to_string();
                        view! {
                            <h1>{label}</h1>
                            <section class="card">
                                <Show when=move || saved.get()>
                                    <p class="notice" role="status">"Saved."</p>
                                </Show>
                                <ActionForm action=update attr:class="grid two">
                                    <FormError error />
                                    <input type="hidden" name="vehicle_id" value=id />
                                    <VehicleFields error vehicle=Some(v) choices />
                                    <div class="form-actions">
                                        <Submit action=*update label="Save changes" busy="Saving…" />
                                    </div>
                                </ActionForm>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
