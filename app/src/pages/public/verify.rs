//! The public verify page of a retirement certificate: no sign-in; the facts and the live
//! status of the certificate's serials.

use crate::api::wallet::get_certificate;
use crate::components::errors::ErrorPanel;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn VerifyPage() -> impl IntoView {
    let params = use_params_map();
    let certificate = Resource::new(
        move || params.read().get("number").unwrap_or_default(),
        get_certificate,
    );
    view! {
        <Title text="Verify a certificate · EV Carbon Exchange" />
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match certificate.await {
                    Err(error) => view! {
                        <h1>"Certificate not found"</h1>
                        <ErrorPanel error />
                    }.into_any(),
                    Ok(c) => {
                        let all_retired = c.blocks.iter().all(|b| b.status == "retired");
                        let pdf = format!("/certificates/{}.pdf", c.number);
                        view! {
                            <h1>"Retirement certificate " <span data-testid="certificate-number">{c.number.clone()}</span></h1>
                            <p class=if all_retired { "notice ok" } else { "notice" } data-testid="certificate-status">
                                {if all_retired {
                                    format!("Valid: all {} kg are retired and can never be sold or retired again.", c.quantity_kg)
                                } else {
                                    "Some serials of this certificate are not in a retired state.".to_owned()
                                }}
                            </p>
                            <dl class="facts">
                                <dt>"Quantity"</dt><dd data-testid="certificate-quantity">{format!("{} t CO₂e ({} kg)", c.credits, c.quantity_kg)}</dd>
                                <dt>"Beneficiary"</dt><dd data-testid="certificate-beneficiary">{c.beneficiary.clone()}</dd>
                                <dt>"Reason"</dt><dd>{c.reason.clone()}</dd>
                                {c.owner_name.clone().map(|holder| view! { <dt>"Retired by"</dt><dd>{holder}</dd> })}
                                <dt>"Date"</dt><dd>{c.retired_at.format("%Y-%m-%d %H:%M UTC").to_string()}</dd>
                            </dl>
                            <p><a class="button secondary" href=pdf download>"Download the certificate (PDF)"</a></p>
                            <h2>"Serial numbers"</h2>
                            <div class="table-wrap">
                                <table class="data">
                                    <thead><tr>
                                        <th scope="col">"Serials"</th><th scope="col" class="num">"kg"</th><th scope="col">"Vintage"</th>
                                        <th scope="col">"Methodology"</th><th scope="col">"Verifier"</th><th scope="col">"Request"</th><th scope="col">"Status now"</th>
                                    </tr></thead>
                                    <tbody>
                                        {c.blocks.into_iter().map(|b| view! {
                                            <tr>
                                                <td><code>{b.serials}</code></td>
                                                <td class="num">{b.kg}</td>
                                                <td>{format!("{} · {}", b.vintage, b.region)}</td>
                                                <td>{b.methodology}</td>
                                                <td>{b.verifier}</td>
                                                <td>{b.request}</td>
                                                <td><span class="badge ok">{b.status}</span></td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
