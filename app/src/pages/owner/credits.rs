//! Credit requests: choose a vehicle and a period, preview the calculation, submit; follow each
//! request's status; cancel while it is pending.

use crate::api::credits::{
    get_request, my_requests, preview_request, CancelRequest, SubmitRequest,
};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, FormError, Submit};
use crate::components::paging::VehicleSelect;
use crate::components::request::{Figures, RequestSummary, RequestTable};
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn CreditsPage() -> impl IntoView {
    view! {
        <Title text="Credits · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner]>
            <Credits />
        </RequireRole>
    }
}

#[component]
fn Credits() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let submit = ServerAction::<SubmitRequest>::new();
    let requests = Resource::new(
        move || (q("page"), submit.version().get()),
        |(page, _)| my_requests(Some(page)),
    );
    let preview = Resource::new(
        move || (q("vehicle"), q("from"), q("to")),
        |(vehicle, from, to)| async move {
            if from.is_empty() && to.is_empty() {
                None
            } else {
                Some(preview_request(Some(vehicle), from, to).await)
            }
        },
    );
    let error = error_of(*submit);
    view! {
        <h1>"Credits"</h1>
        <section class="card" aria-labelledby="new-request">
            <h2 id="new-request">"Request credits"</h2>
            <p class="muted">"Pick a vehicle and a period within one year. The preview shows the calculation with the active methodology; submitting locks those trips until a verifier decides."</p>
            <form method="get" action="/credits" class="filters">
                <VehicleSelect id="request-vehicle" name="vehicle" selected=Signal::derive(move || q("vehicle")) />
                <div class="field">
                    <label for="request-from">"From"</label>
                    <input id="request-from" type="date" name="from" required value=move || q("from") />
                </div>
                <div class="field">
                    <label for="request-to">"To"</label>
                    <input id="request-to" type="date" name="to" required value=move || q("to") />
                </div>
                <button type="submit" class="button secondary">"Preview"</button>
            </form>
            <FormError error />
            <Transition fallback=|| view! { <p class="loading" role="status">"Calculating…"</p> }>
                {move || Suspend::new(async move {
                    match preview.await {
                        None => ().into_any(),
                        Some(Err(error)) => view! { <ErrorPanel error /> }.into_any(),
                        Some(Ok(figures)) => view! {
                            <div class="preview" data-testid="preview">
                                <Figures figures />
                                <ActionForm action=submit>
                                    <input type="hidden" name="vehicle_id" value=q("vehicle") />
                                    <input type="hidden" name="from" value=q("from") />
                                    <input type="hidden" name="to" value=q("to") />
                                    <Submit action=*submit label="Submit for verification" busy="Submitting…" />
                                </ActionForm>
                            </div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <h2>"Your requests"</h2>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match requests.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(list) if list.total == 0 => view! { <p class="muted">"No requests yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <RequestTable lines=list.requests link=|l| format!("/credits/{}", l.id) />
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn RequestPage() -> impl IntoView {
    view! {
        <Title text="Credit request · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner]>
            <Request />
        </RequireRole>
    }
}

#[component]
fn Request() -> impl IntoView {
    let params = use_params_map();
    let cancel = ServerAction::<CancelRequest>::new();
    let request = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                cancel.version().get(),
            )
        },
        |(id, _)| get_request(id),
    );
    let error = error_of(*cancel);
    view! {
        <p><a href="/credits">"← All requests"</a></p>
        <FormError error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match request.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(r) => {
                        let id = r.id.to_string();
                        let can_cancel = r.can_cancel;
                        view! {
                            <h1>{format!("Request {}", r.number)}</h1>
                            {can_cancel.then(|| view! {
                                <ActionForm action=cancel attr:class="inline">
                                    <input type="hidden" name="request_id" value=id.clone() />
                                    <Submit action=*cancel label="Cancel this request" busy="Cancelling…" class="danger small" />
                                </ActionForm>
                            })}
                            <RequestSummary request=r />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
