//! `/market/trends`, public: the average price per tonne month by month for every region and
//! vintage that traded in the last year — a chart drawn on the server and the table behind it —
//! with the price the platform's trades suggest for each.

use crate::api::market::market_trends;
use crate::components::errors::ErrorPanel;
use crate::domain::market::{format_money, tonnes};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn TrendsPage() -> impl IntoView {
    let trends = Resource::new(|| (), |_| market_trends());
    view! {
        <Title text="Market trends · EV Carbon Exchange" />
        <h1>"Market trends"</h1>
        <p class="muted">"Prices people paid on this platform, per tonne, weighted by quantity. The suggested price is the recency- and quantity-weighted median of the last year's trades, with the band from the 20th to the 80th percentile and the error it would have had on recent trades."</p>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match trends.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(t) if t.classes.is_empty() => view! { <p class="notice">"No trades in the last year yet."</p> }.into_any(),
                    Ok(t) => {
                        let currency = t.currency.clone();
                        view! {
                            {t.classes.into_iter().map(|c| {
                                let m = { let currency = currency.clone(); move |v| format_money(v, &currency) };
                                let s = c.suggestion.clone();
                                let id = format!("trend-{}-{}", c.region, c.vintage);
                                let labelled = id.clone();
                                view! {
                                    <section class="card trend" aria-labelledby=labelled data-testid="trend">
                                        <h2 id=id>{format!("{} · vintage {}", c.region, c.vintage)}</h2>
                                        <dl class="stats">
                                            <div><dt>"Suggested price per t"</dt><dd data-testid="suggested">{m(s.price_per_t)}</dd></div>
                                            <div><dt>"Band"</dt><dd>{format!("{} – {}", m(s.low), m(s.high))}</dd></div>
                                            <div><dt>"Trades behind it"</dt><dd>{s.trades}</dd></div>
                                            <div><dt>"Back-tested error"</dt><dd>{s.backtest_error_percent.map(|e| format!("±{e} % ({} trades)", s.backtest_trades)).unwrap_or_else(|| "too little history".into())}</dd></div>
                                        </dl>
                                        <p class="muted small">{s.rule_based.then(|| view! { <span class="badge warn">"Rule-based default"</span> " " })}{s.basis.clone()}</p>
                                        <figure class="chart" role="img" aria-label=format!("Line chart of the average price per tonne of {} {} per month; the figures are in the table below", c.region, c.vintage) inner_html=c.chart_svg></figure>
                                        <div class="table-wrap"><table class="data">
                                            <thead><tr><th scope="col">"Month"</th><th scope="col" class="num">"Average per t"</th><th scope="col" class="num">"Trades"</th><th scope="col" class="num">"Quantity"</th></tr></thead>
                                            <tbody>
                                                {c.points.into_iter().map(|p| view! {
                                                    <tr>
                                                        <th scope="row">{p.month}</th>
                                                        <td class="num">{p.average_per_t.map(m.clone()).unwrap_or_else(|| "—".into())}</td>
                                                        <td class="num">{p.trades}</td>
                                                        <td class="num">{tonnes(p.kg)}</td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table></div>
                                    </section>
                                }
                            }).collect_view()}
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
