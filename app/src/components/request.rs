//! A credit request's figures, calculation, findings and timeline: the same view for the
//! owner's preview, their request page and the verifier's review.

use crate::api::credits::{CreditRequest, RequestFigures, RequestLine};
use leptos::prelude::*;

/// "1,234.5" for decimals shown in summaries.
fn kg(v: impl std::fmt::Display) -> String {
    format!("{v} kg")
}

#[component]
pub fn StatusBadge(status: String) -> impl IntoView {
    let class = match status.as_str() {
        "approved" => "badge ok",
        "rejected" => "badge danger",
        "pending" => "badge warn",
        _ => "badge",
    };
    view! { <span class=class data-testid="request-status">{status}</span> }
}

/// The numbers, the step-by-step calculation and the anomaly findings.
#[component]
pub fn Figures(figures: RequestFigures) -> impl IntoView {
    let f = figures;
    let risk_class = format!(
        "badge {}",
        match f.risk_level.as_str() {
            "high" => "danger",
            "medium" => "warn",
            _ => "ok",
        }
    );
    view! {
        <dl class="stats">
            <div><dt>"Credits to the owner"</dt><dd data-testid="net-credits">{format!("{} t", f.net_credits)}</dd></div>
            <div><dt>"Gross / buffer / net"</dt><dd data-testid="gross-buffer-net">{format!("{} / {} / {} kg", f.gross_kg, f.buffer_kg, f.net_kg)}</dd></div>
            <div><dt>"CO₂ avoided"</dt><dd>{kg(f.avoided_kg)}</dd></div>
            <div><dt>"Trips"</dt><dd data-testid="request-trips">{f.trips}</dd></div>
            <div><dt>"Distance"</dt><dd>{format!("{} km", f.distance_km.round_dp(1))}</dd></div>
            <div><dt>"Charging sessions"</dt><dd>{f.charging_sessions}</dd></div>
            <div><dt>"Methodology"</dt><dd>{f.methodology.clone()}</dd></div>
            <div><dt>"Vintage · region"</dt><dd>{format!("{} · {}", f.vintage, f.region)}</dd></div>
            <div><dt>"Risk"</dt><dd><span class=risk_class>{format!("{} ({})", f.risk_score, f.risk_level)}</span></dd></div>
        </dl>
        <h3>"Calculation, step by step"</h3>
        <div class="table-wrap">
            <table class="data steps">
                <thead><tr><th scope="col">"Step"</th><th scope="col">"How"</th><th scope="col" class="num">"Result"</th></tr></thead>
                <tbody>
                    {f.steps.into_iter().map(|s| view! {
                        <tr><td>{s.label}</td><td>{s.formula}</td><td class="num nowrap">{s.value}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <h3>"Anomaly checks"</h3>
        {if f.period_flags.is_empty() && f.trip_flags.is_empty() {
            view! { <p class="muted">"Nothing unusual in these trips."</p> }.into_any()
        } else {
            view! {
                <ul class="findings" data-testid="findings">
                    {f.trip_flags.into_iter().map(|(code, n)| view! {
                        <li><span class="badge warn">{code.replace('_', " ")}</span>{format!(" on {n} trip{}", if n == 1 { "" } else { "s" })}</li>
                    }).collect_view()}
                    {f.period_flags.into_iter().map(|p| view! {
                        <li><span class="badge warn">{p.code.replace('_', " ")}</span>" "{p.message}</li>
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
    }
}

/// A request with its status, timeline, decision and serials.
#[component]
pub fn RequestSummary(request: CreditRequest) -> impl IntoView {
    let r = request;
    view! {
        <p class="lead">
            <StatusBadge status=r.status.clone() />
            {format!(" {} · {} to {} · submitted by {}", r.vehicles, r.period_from, r.period_to, r.owner_name)}
        </p>
        <ol class="timeline" aria-label="Timeline">
            {r.timeline.into_iter().map(|e| view! {
                <li>
                    <strong>{e.label}</strong>
                    " "<time datetime=e.at.to_rfc3339()>{e.at.format("%Y-%m-%d %H:%M UTC").to_string()}</time>
                    <br /><span class="muted">{e.detail}</span>
                </li>
            }).collect_view()}
        </ol>
        {r.serials.map(|s| view! { <p>"Serials: "<code data-testid="serials">{s}</code></p> })}
        <Figures figures=r.figures />
    }
}

/// A table of requests linking to `link(id)`.
#[component]
pub fn RequestTable(
    lines: Vec<RequestLine>,
    link: fn(&RequestLine) -> String,
    #[prop(optional)] show_owner: bool,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="data">
                <thead>
                    <tr>
                        <th scope="col">"Request"</th>
                        {show_owner.then(|| view! { <th scope="col">"Owner"</th> })}
                        <th scope="col">"Vehicles"</th>
                        <th scope="col">"Period"</th>
                        <th scope="col" class="num">"Trips"</th>
                        <th scope="col" class="num">"kg (gross)"</th>
                        <th scope="col" class="num">"Risk"</th>
                        <th scope="col">"Submitted"</th>
                        <th scope="col">"Status"</th>
                    </tr>
                </thead>
                <tbody>
                    {lines.into_iter().map(|l| {
                        let href = link(&l);
                        view! {
                            <tr>
                                <td><a href=href>{l.number.clone()}</a></td>
                                {show_owner.then(|| view! { <td>{l.owner_name.clone()}</td> })}
                                <td>{l.vehicles.clone()}</td>
                                <td class="nowrap">{format!("{} – {}", l.period_from, l.period_to)}</td>
                                <td class="num">{l.trips}</td>
                                <td class="num">{l.gross_kg}</td>
                                <td class="num">{l.risk_score}</td>
                                <td class="nowrap">{l.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                <td><StatusBadge status=l.status.clone() /></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
