//! Reviewing one request: every trip, the chart, the calculation step by step with the
//! methodology, the anomaly findings, the owner's history, and the decision.

use crate::api::credits::{get_request, request_trips, DecideRequest};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, FormError, Submit};
use crate::components::paging::Pager;
use crate::components::request::{RequestSummary, RequestTable};
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

#[component]
pub fn ReviewPage() -> impl IntoView {
    view! {
        <Title text="Review a request · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Cva, Role::Admin]>
            <Review />
        </RequireRole>
    }
}

#[component]
fn Review() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let decide = ServerAction::<DecideRequest>::new();
    let request = Resource::new(
        move || (id(), decide.version().get()),
        |(id, _)| get_request(id),
    );
    let trips = Resource::new(
        move || {
            (
                id(),
                query.read().get("page").unwrap_or_default(),
                decide.version().get(),
            )
        },
        |(id, page, _)| request_trips(id, Some(page)),
    );
    let error = error_of(*decide);
    view! {
        <p><a href="/cva">"← Review queue"</a></p>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match request.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(r) => {
                        let rid = r.id.to_string();
                        let can_decide = r.can_decide;
                        let gross = r.figures.gross_kg;
                        let history = r.history.clone();
                        let chart = r.chart_svg.clone();
                        let (a, b, c) = (rid.clone(), rid.clone(), rid);
                        view! {
                            <h1>{format!("Request {}", r.number)}</h1>
                            {can_decide.then(|| view! {
                                <section class="card decision" aria-labelledby="decide">
                                    <h2 id="decide">"Decision"</h2>
                                    <FormError error />
                                    <div class="decision-forms">
                                        <ActionForm action=decide>
                                            <input type="hidden" name="request_id" value=a />
                                            <input type="hidden" name="decision" value="approve" />
                                            <p>{format!("Issue {gross} kg (the buffer share goes to the pool).")}</p>
                                            <Submit action=*decide label="Approve" busy="Approving…" />
                                        </ActionForm>
                                        <ActionForm action=decide>
                                            <input type="hidden" name="request_id" value=b />
                                            <input type="hidden" name="decision" value="reduce" />
                                            <div class="field">
                                                <label for="approved-kg">"Approve only (kg, gross)"</label>
                                                <input id="approved-kg" name="approved_kg" type="number" min="1" max=(gross - 1).to_string() step="1" inputmode="numeric" />
                                            </div>
                                            <div class="field">
                                                <label for="reduce-notes">"Reason"</label>
                                                <textarea id="reduce-notes" name="notes" rows="2"></textarea>
                                            </div>
                                            <Submit action=*decide label="Approve reduced" busy="Approving…" class="secondary" />
                                        </ActionForm>
                                        <ActionForm action=decide>
                                            <input type="hidden" name="request_id" value=c />
                                            <input type="hidden" name="decision" value="reject" />
                                            <div class="field">
                                                <label for="reject-notes">"Notes for the owner"</label>
                                                <textarea id="reject-notes" name="notes" rows="2"></textarea>
                                            </div>
                                            <Submit action=*decide label="Reject" busy="Rejecting…" class="danger" />
                                        </ActionForm>
                                    </div>
                                </section>
                            })}
                            <RequestSummary request=r />
                            {chart.map(|svg| view! {
                                <figure class="chart" role="img" aria-label="Bar chart of kilometres per day of the request's trips" inner_html=svg></figure>
                            })}
                            <h2>"The owner's other requests"</h2>
                            {if history.is_empty() {
                                view! { <p class="muted">"This is the owner's first request."</p> }.into_any()
                            } else {
                                view! { <RequestTable lines=history link=|l| format!("/cva/requests/{}", l.id) /> }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Transition>
        <h2>"Trips"</h2>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match trips.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(p) if p.total == 0 => view! { <p class="muted">"The request holds no trips (a rejected or cancelled request releases them)."</p> }.into_any(),
                    Ok(p) => {
                        let (page, pages) = (p.page, p.pages);
                        let link = move |n: i64| format!("/cva/requests/{}?page={n}", id());
                        view! {
                            <p class="muted">{format!("{} trips", p.total)}</p>
                            <div class="table-wrap">
                                <table class="data">
                                    <thead><tr>
                                        <th scope="col">"Vehicle"</th><th scope="col">"Start (local)"</th><th scope="col">"End"</th>
                                        <th scope="col" class="num">"km"</th><th scope="col" class="num">"kWh"</th><th scope="col">"Flags"</th>
                                    </tr></thead>
                                    <tbody>
                                        {p.trips.into_iter().map(|t| { let flagged = !t.flags.is_empty(); view! {
                                            <tr class:flagged=flagged>
                                                <td>{t.plate}</td>
                                                <td class="nowrap">{t.local_start.replace('T', " ")}</td>
                                                <td class="nowrap">{t.local_end.replace('T', " ")}</td>
                                                <td class="num">{t.distance_km.to_string()}</td>
                                                <td class="num">{t.energy_kwh.map(|e| e.to_string()).unwrap_or_else(|| "—".into())}</td>
                                                <td>{t.flags.into_iter().map(|f| view! { <span class="badge warn">{f.replace('_', " ")}</span> }).collect_view()}</td>
                                            </tr>
                                        }}).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <Pager page=page pages=pages href=link label="Trip pages" />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
