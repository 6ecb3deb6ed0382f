//! Methodologies: every version with its parameters, adding a version (never editing one),
//! and choosing the version new calculations use. Every change is audited.

use crate::api::methodology::{
    list_methodologies, ActivateMethodology, AddMethodologyVersion, MethodologyVersion,
};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use crate::domain::methodology::Params;
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn MethodologyPage() -> impl IntoView {
    view! {
        <Title text="Methodologies · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Admin]>
            <Methodologies />
        </RequireRole>
    }
}

#[component]
fn Methodologies() -> impl IntoView {
    let add = ServerAction::<AddMethodologyVersion>::new();
    let activate = ServerAction::<ActivateMethodology>::new();
    let versions = Resource::new(
        move || (add.version().get(), activate.version().get()),
        |_| list_methodologies(),
    );
    let add_error = error_of(*add);
    let activate_error = error_of(*activate);
    let added = succeeded(*add);
    view! {
        <h1>"CO₂ methodologies"</h1>
        <p class="lead">"New trips and credit requests use the active version. Versions are never edited: add a new one with new parameters."</p>
        <FormError error=activate_error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match versions.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(list) => view! {
                        <div class="grid two">
                            {list.into_iter().map(|v| view! { <VersionCard v activate /> }).collect_view()}
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
        <section class="card" aria-labelledby="add-heading">
            <h2 id="add-heading">"Add a version"</h2>
            <Show when=move || added.get()>
                <p class="notice" role="status">"The new version is saved. Make it active when it should apply."</p>
            </Show>
            <ActionForm action=add attr:class="grid two">
                <FormError error=add_error />
                <div class="field">
                    <label for="m-code">"Methodology"</label>
                    <select id="m-code" name="code">
                        <option value="ENERGY-2025">"ENERGY-2025 (energy based)"</option>
                        <option value="SEED-2025">"SEED-2025 (per km)"</option>
                    </select>
                </div>
                <Field label="Buffer share (0–0.5)" name="buffer_share" error=add_error value="0.05" inputmode="decimal" />
                <Field label="Baseline fuel use (L/100 km) — ENERGY" name="baseline_l_per_100km" error=add_error value="7.0" inputmode="decimal" />
                <Field label="Fuel CO₂ factor (kg/L) — ENERGY" name="fuel_kg_co2_per_l" error=add_error value="2.348" inputmode="decimal" />
                <Field label="Losses share (0–1) — ENERGY" name="losses_share" error=add_error value="0.08" inputmode="decimal" />
                <div class="field">
                    <label for="m-grid">"Grid factors, one REGION=kg CO₂/kWh per line — ENERGY"</label>
                    <textarea id="m-grid" name="grid_factors" rows="3">"VN=0.6592"</textarea>
                    <p class="field-error">{move || add_error.get().and_then(|e| e.field("grid_kg_co2_per_kwh"))}</p>
                </div>
                <Field label="Baseline (g CO₂/km) — SEED" name="baseline_g_per_km" error=add_error value="120" inputmode="decimal" />
                <Field label="EV grid emissions (g CO₂/km) — SEED" name="ev_g_per_km" error=add_error value="20" inputmode="decimal" />
                <Field label="Why this version (source, date)" name="note" error=add_error />
                <div class="form-actions">
                    <Submit action=*add label="Add version" busy="Saving…" />
                </div>
            </ActionForm>
        </section>
    }
}

#[component]
fn VersionCard(
    v: MethodologyVersion,
    activate: ServerAction<ActivateMethodology>,
) -> impl IntoView {
    let m = v.methodology;
    let title = format!("{} v{}", m.code.as_str(), m.version);
    let rows: Vec<(String, String)> = match &m.params {
        Params::Seed(p) => vec![
            (
                "Baseline".into(),
                format!("{} g CO₂/km", p.baseline_g_per_km),
            ),
            ("EV (grid)".into(), format!("{} g CO₂/km", p.ev_g_per_km)),
        ],
        Params::Energy(p) => {
            let mut rows = vec![
                (
                    "Baseline fuel use".into(),
                    format!("{} L/100 km", p.baseline_l_per_100km),
                ),
                (
                    "Fuel CO₂ factor".into(),
                    format!("{} kg/L", p.fuel_kg_co2_per_l),
                ),
                ("Losses".into(), format!("{}", p.losses_share)),
            ];
            rows.extend(
                p.grid_kg_co2_per_kwh
                    .iter()
                    .map(|(r, f)| (format!("Grid {r}"), format!("{f} kg CO₂/kWh"))),
            );
            rows
        }
    };
    let id = v.id.to_string();
    let button = format!("Make {title} active");
    view! {
        <article class="card" data-version=title.clone()>
            <h2>{title.clone()} {v.active.then(|| view! { " " <span class="badge ok">"Active"</span> })}</h2>
            <p class="muted">{format!("Added {} — {}", v.created_at.format("%Y-%m-%d"), v.note)}</p>
            <dl class="facts">
                {rows.into_iter().map(|(k, val)| view! { <dt>{k}</dt><dd>{val}</dd> }).collect_view()}
                <dt>"Buffer share"</dt><dd>{m.buffer_share.to_string()}</dd>
            </dl>
            {(!v.active).then(|| view! {
                <ActionForm action=activate>
                    <input type="hidden" name="version_id" value=id />
                    <button type="submit" class="button small secondary">{button}</button>
                </ActionForm>
            })}
        </article>
    }
}
