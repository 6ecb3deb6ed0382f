//! `/reports`: the signed-in person's report (SPEC §9) — an EV owner's CO₂, credits and
//! revenue, a buyer's purchases and retirements, the admin's platform activity — for a period,
//! by day, month or year: totals, charts drawn on the server (readable without JavaScript), the
//! table, and the same figures as CSV and PDF.

use crate::api::reports::my_report_view;
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::domain::period::Grain;
use crate::domain::user::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ReportsPage() -> impl IntoView {
    view! {
        <Title text="Reports · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner, Role::Buyer, Role::Admin]>
            <Reports />
        </RequireRole>
    }
}

#[component]
fn Reports() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let view_ = Resource::new(
        move || (q("by"), q("from"), q("to")),
        |(by, from, to)| my_report_view(Some(by), Some(from), Some(to)),
    );
    view! {
        <Transition fallback=|| view! { <p class="loading" role="status">"Adding up the figures…"</p> }>
            {move || Suspend::new(async move {
                match view_.await {
                    Err(error) => view! { <h1>"Reports"</h1> <ErrorPanel error /> }.into_any(),
                    Ok(v) => {
                        let r = v.report;
                        let grain = r.grain;
                        let currency = r.currency.clone();
                        view! {
                            <h1>{r.title.clone()}</h1>
                            <form method="get" action="/reports" class="filters">
                                <div class="field">
                                    <label for="report-by">"By"</label>
                                    <select id="report-by" name="by">
                                        {Grain::ALL.into_iter().map(|g| view! { <option value=g.as_str() selected=g == grain>{g.as_str()}</option> }).collect_view()}
                                    </select>
                                </div>
                                <div class="field">
                                    <label for="report-from">"From"</label>
                                    <input id="report-from" type="date" name="from" value=r.from.to_string() />
                                </div>
                                <div class="field">
                                    <label for="report-to">"To"</label>
                                    <input id="report-to" type="date" name="to" value=r.to.to_string() />
                                </div>
                                <button type="submit" class="button">"Show"</button>
                                <a class="button secondary" href=v.csv_url download>"CSV"</a>
                                <a class="button secondary" href=v.pdf_url download>"PDF"</a>
                            </form>
                            <p class="muted">{format!("{} · {} to {}", r.subject, r.from, r.to)}</p>
                            <dl class="stats" data-testid="report-totals">
                                {r.columns.iter().zip(v.totals.iter()).filter_map(|(c, t)| t.map(|t| view! {
                                    <div><dt>{c.label.clone()}</dt><dd>{c.format(t, &currency)}</dd></div>
                                })).collect_view()}
                            </dl>
                            <div class="charts">
                                {r.charts.iter().zip(v.charts_svg).map(|(c, svg)| view! {
                                    <figure class="chart" role="img" aria-label=format!("Chart of {} per {}; the figures are in the table below", c.title.to_lowercase(), grain.as_str()) inner_html=svg></figure>
                                }).collect_view()}
                            </div>
                            <div class="table-wrap"><table class="data" data-testid="report-table">
                                <thead><tr>
                                    <th scope="col">"Period"</th>
                                    {r.columns.iter().map(|c| view! { <th scope="col" class="num">{c.label.clone()}</th> }).collect_view()}
                                </tr></thead>
                                <tbody>
                                    {r.rows.iter().map(|row| view! {
                                        <tr>
                                            <th scope="row">{row.label.clone()}</th>
                                            {r.columns.iter().zip(&row.values).map(|(c, v)| view! { <td class="num">{c.format(*v, &currency)}</td> }).collect_view()}
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                                <tfoot><tr>
                                    <th scope="row">"Total"</th>
                                    {r.columns.iter().zip(v.totals.iter()).map(|(c, t)| view! { <td class="num">{t.map(|t| c.format(t, &currency)).unwrap_or_default()}</td> }).collect_view()}
                                </tr></tfoot>
                            </table></div>
                            <ul class="notes muted">{r.notes.iter().cloned().map(|n| view! { <li>{n}</li> }).collect_view()}</ul>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
