//! Importing a file: choose the vehicle and the kind of data, upload with a progress bar, and
//! read the report (imported, rejected with line and reason, flagged). Without JavaScript the
//! same form posts normally and the browser lands on the report.

use crate::api::imports::{import_report, ImportSummary, UploadImport, REJECTIONS_PER_PAGE};
use crate::api::vehicles::list_vehicles;
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::paging::Pager;
use crate::domain::user::Role;
use crate::error::AppError;
use leptos::prelude::*;
use leptos::server_fn::error::ServerFnUrlError;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

const OWNER: &[Role] = &[Role::EvOwner];

/// Where an upload stands in the browser (only the browser build moves it past Idle).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
enum Upload {
    Idle,
    Sending { percent: u32 },
    Processing,
    Failed(AppError),
}

#[component]
pub fn ImportPage() -> impl IntoView {
    view! {
        <Title text="Import data · EV Carbon Exchange" />
        <RequireRole roles=OWNER>
            <ImportForm />
        </RequireRole>
    }
}

#[component]
fn ImportForm() -> impl IntoView {
    let vehicles = Resource::new(|| (), |_| list_vehicles(None));
    let query = use_query_map();
    // A form posted without JavaScript comes back here with its error in the URL.
    let url_error = move || {
        let q = query.read();
        match (q.get("__path"), q.get("__err")) {
            (Some(path), Some(err)) if path == UploadImport::PATH => {
                Some(ServerFnUrlError::<AppError>::decode_err(&err))
            }
            _ => None,
        }
    };
    let state = RwSignal::new(Upload::Idle);
    let error = Signal::derive(move || match state.get() {
        Upload::Failed(e) => Some(e),
        _ => url_error(),
    });
    let preselected = move || query.read().get("vehicle").unwrap_or_default();
    let charging = move || query.read().get("kind").as_deref() == Some("charging");

    let navigate = leptos_router::hooks::use_navigate();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        #[cfg(feature = "hydrate")]
        send_with_progress(ev, state, navigate.clone());
        #[cfg(not(feature = "hydrate"))]
        let _ = &navigate;
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };

    view! {
        <h1>"Import trips or charging sessions"</h1>
        <p class="lead">
            "CSV (comma or semicolon; UTF-8 or UTF-16) or JSON. Required trip columns: "
            <code>"start_time"</code>", "<code>"end_time"</code>", "<code>"distance_km"</code>
            "; optional "<code>"energy_kwh"</code>", coordinates, odometer and notes. Times with an offset, or local to the vehicle’s time zone."
        </p>
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || {
                let on_submit = on_submit.clone();
                Suspend::new(async move {
                match vehicles.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="notice">"Register a vehicle first: " <a href="/vehicles">"Your vehicles"</a></p>
                    }.into_any(),
                    Ok(list) => view! {
                        <form
                            class="card upload"
                            method="post"
                            action=UploadImport::PATH
                            enctype="multipart/form-data"
                            on:submit=on_submit
                        >
                            {move || error.get().map(|e| view! { <div class="form-error" role="alert">{e.field("file").unwrap_or_else(|| e.to_string())}</div> })}
                            <div class="field">
                                <label for="import-vehicle">"Vehicle"</label>
                                <select id="import-vehicle" name="vehicle_id">
                                    {list.into_iter().map(|v| {
                                        let id = v.id.to_string();
                                        let selected = id == preselected();
                                        view! { <option value=id selected=selected>{v.label()}</option> }
                                    }).collect_view()}
                                </select>
                            </div>
                            <fieldset class="role-choice">
                                <legend>"The file holds"</legend>
                                <label class="choice"><input type="radio" name="kind" value="trips" checked=!charging() />" Trips"</label>
                                <label class="choice"><input type="radio" name="kind" value="charging" checked=charging() />" Charging sessions (session id, charger id, start, end, kWh)"</label>
                            </fieldset>
                            <div class="field">
                                <label for="import-file">"File"</label>
                                <input id="import-file" type="file" name="file" accept=".csv,.json,.txt,text/csv,application/json" />
                            </div>
                            <UploadProgress state />
                            <button type="submit" class="button" disabled=move || matches!(state.get(), Upload::Sending { .. } | Upload::Processing)>
                                "Import"
                            </button>
                        </form>
                    }.into_any(),
                }
            })}}
        </Suspense>
    }
}

#[component]
fn UploadProgress(state: RwSignal<Upload>) -> impl IntoView {
    move || match state.get() {
        Upload::Sending { percent } => Some(
            view! {
                <div class="progress" role="status">
                    <progress max="100" value=percent.to_string()>{format!("{percent}%")}</progress>
                    <span>{format!("Uploading… {percent}%")}</span>
                </div>
            }
            .into_any(),
        ),
        Upload::Processing => Some(
            view! {
                <div class="progress" role="status">
                    <progress max="100"></progress>
                    <span>"Checking and storing the rows…"</span>
                </div>
            }
            .into_any(),
        ),
        _ => None,
    }
}

/// Sends the form with XMLHttpRequest, which reports upload progress (fetch does not).
#[cfg(feature = "hydrate")]
fn send_with_progress(
    ev: leptos::ev::SubmitEvent,
    state: RwSignal<Upload>,
    navigate: impl Fn(&str, leptos_router::NavigateOptions) + 'static,
) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Some(form) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
    else {
        return;
    };
    let Ok(data) = web_sys::FormData::new_with_form(&form) else {
        return;
    };
    let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
        return; // the plain form post goes ahead
    };
    ev.prevent_default();
    if xhr.open("POST", UploadImport::PATH).is_err() {
        return;
    }
    let _ = xhr.set_request_header("Accept", "application/json");
    state.set(Upload::Sending { percent: 0 });
    if let Ok(upload) = xhr.upload() {
        let on_progress =
            Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
                if e.length_computable() && e.total() > 0.0 {
                    let percent = (e.loaded() / e.total() * 100.0).round() as u32;
                    state.set(if percent >= 100 {
                        Upload::Processing
                    } else {
                        Upload::Sending { percent }
                    });
                }
            });
        upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
        on_progress.forget();
    }
    let done_xhr = xhr.clone();
    let on_load = Closure::<dyn FnMut()>::new(move || {
        let text = done_xhr.response_text().ok().flatten().unwrap_or_default();
        if done_xhr.status().unwrap_or(0) == 200 {
            match serde_json::from_str::<ImportSummary>(&text) {
                Ok(report) => {
                    state.set(Upload::Idle);
                    navigate(&format!("/imports/{}", report.id), Default::default());
                }
                Err(_) => state.set(Upload::Failed(AppError::Unreachable)),
            }
        } else {
            let error = serde_json::from_str::<AppError>(&text).unwrap_or(AppError::Unreachable);
            state.set(Upload::Failed(error));
        }
    });
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    on_load.forget();
    let on_error =
        Closure::<dyn FnMut()>::new(move || state.set(Upload::Failed(AppError::Unreachable)));
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    if xhr.send_with_opt_form_data(Some(&data)).is_err() {
        state.set(Upload::Failed(AppError::Unreachable));
    }
}

#[component]
pub fn ImportReportPage() -> impl IntoView {
    view! {
        <Title text="Import report · EV Carbon Exchange" />
        <RequireRole roles=OWNER>
            <Report />
        </RequireRole>
    }
}

#[component]
fn Report() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let report = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                query.read().get("page"),
            )
        },
        |(id, page)| import_report(id, page),
    );
    view! {
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(r) => view! { <ReportView r /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ReportView(r: ImportSummary) -> impl IntoView {
    let query = use_query_map();
    let page: i64 = query
        .read_untracked()
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let pages =
        ((i64::from(r.rows_rejected) + REJECTIONS_PER_PAGE - 1) / REJECTIONS_PER_PAGE).max(1);
    let what = if r.kind == "charging" {
        "charging sessions"
    } else {
        "trips"
    };
    let headline = if r.rows_imported == 0 && r.rows_total > 0 && r.rows_duplicate == r.rows_total {
        format!(
            "Nothing new: all {} rows were already imported.",
            r.rows_total
        )
    } else {
        format!(
            "{} of {} rows imported as {what}.",
            r.rows_imported, r.rows_total
        )
    };
    let id = r.id;
    view! {
        <p><a href="/import">"← Import another file"</a></p>
        <h1>"Import report"</h1>
        <p class="muted">{format!("{} · {} · {} bytes · {}", r.file_name, r.format, r.file_bytes, r.created_at.format("%Y-%m-%d %H:%M UTC"))}</p>
        <p class="notice" role="status" data-testid="import-headline">{headline}</p>
        {r.earlier_same_file.map(|t| view! {
            <p class="muted">{format!("This same file was imported before, on {}.", t.format("%Y-%m-%d %H:%M UTC"))}</p>
        })}
        <dl class="stats">
            <div><dt>"Imported"</dt><dd data-testid="imported">{r.rows_imported}</dd></div>
            <div><dt>"Rejected"</dt><dd data-testid="rejected">{r.rows_rejected}</dd></div>
            <div><dt>"of which duplicates"</dt><dd>{r.rows_duplicate}</dd></div>
            <div><dt>"Flagged for review"</dt><dd data-testid="flagged">{r.rows_flagged}</dd></div>
            {(r.kind == "trips").then(|| view! { <div><dt>"CO₂ avoided"</dt><dd>{format!("{} kg", r.avoided_kg.round_dp(1))}</dd></div> })}
        </dl>
        {(!r.rejected.is_empty()).then(|| view! {
            <h2>"Rejected rows"</h2>
            <div class="table-wrap">
                <table class="data rejections">
                    <thead><tr><th scope="col" class="num">"Line"</th><th scope="col">"Reason"</th></tr></thead>
                    <tbody>
                        {r.rejected.into_iter().map(|x| view! { <tr><td class="num">{x.line}</td><td>{x.reason}</td></tr> }).collect_view()}
                    </tbody>
                </table>
            </div>
            <Pager page=page pages=pages href=move |n| format!("/imports/{id}?page={n}") />
        })}
    }
}
