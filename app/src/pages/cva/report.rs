//! The issuance report for a period: totals, approval rate, a chart per month, every decision;
//! CSV and PDF downloads.

use crate::api::reports::issuance_summary;
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::domain::user::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn IssuanceReportPage() -> impl IntoView {
    view! {
        <Title text="Issuance report · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Cva, Role::Admin]>
            <Report />
        </RequireRole>
    }
}

#[component]
fn Report() -> impl IntoView {
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let report = Resource::new(
        move || (q("from"), q("to")),
        |(from, to)| issuance_summary(Some(from), Some(to)),
    );
    view! {
        <h1>"Issuance report"</h1>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(v) => {
                        let r = v.report;
                        view! {
                            <form method="get" action="/cva/report" class="filters">
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
                            <dl class="stats">
                                <div><dt>"Issued (gross)"</dt><dd data-testid="issued-kg">{format!("{} kg", r.issued_kg)}</dd></div>
                                <div><dt>"To owners · buffer"</dt><dd>{format!("{} · {} kg", r.net_kg, r.buffer_kg)}</dd></div>
                                <div><dt>"Decisions"</dt><dd>{format!("{} approved, {} reduced, {} rejected", r.approved, r.reduced, r.rejected)}</dd></div>
                                <div><dt>"Approval rate"</dt><dd data-testid="approval-rate">{format!("{} %", r.approval_rate)}</dd></div>
                                <div><dt>"Waiting now"</dt><dd>{r.pending_now}</dd></div>
                            </dl>
                            <figure class="chart" role="img" aria-label="Bar chart of credits issued per month" inner_html=v.chart_svg></figure>
                            {if r.lines.is_empty() {
                                view! { <p class="muted">"No decisions in this period."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="data">
                                        <thead><tr>
                                            <th scope="col">"Request"</th><th scope="col">"Owner"</th><th scope="col">"Decided"</th><th scope="col">"Decision"</th>
                                            <th scope="col" class="num">"Requested"</th><th scope="col" class="num">"Issued"</th><th scope="col" class="num">"Net"</th>
                                            <th scope="col">"Verifier"</th><th scope="col">"Serials"</th>
                                        </tr></thead>
                                        <tbody>
                                            {r.lines.into_iter().map(|l| view! {
                                                <tr>
                                                    <td>{l.request}</td><td>{l.owner}</td>
                                                    <td class="nowrap">{l.decided_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                                    <td>{l.decision.replace('_', " ")}</td>
                                                    <td class="num">{l.requested_kg}</td><td class="num">{l.approved_kg}</td><td class="num">{l.net_kg}</td>
                                                    <td>{l.verifier}</td><td><code>{l.serials.unwrap_or_default()}</code></td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table></div>
                                }.into_any()
                            }}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
