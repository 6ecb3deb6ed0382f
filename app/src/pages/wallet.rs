//! The carbon wallet: balances, the serials held, every movement with its serial ranges,
//! retiring credits for a beneficiary, and the certificates.

use crate::api::wallet::{carbon_wallet, RetireCredits};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, Field, FormError, Submit};
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn WalletPage() -> impl IntoView {
    view! {
        <Title text="Carbon wallet · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner, Role::Buyer]>
            <Wallet />
        </RequireRole>
    }
}

fn tonnes(kg: i64) -> String {
    format!("{}.{:03} t", kg / 1000, kg % 1000)
}

#[component]
fn Wallet() -> impl IntoView {
    let retire = ServerAction::<RetireCredits>::new();
    let wallet = Resource::new(move || retire.version().get(), |_| carbon_wallet());
    let error = error_of(*retire);
    view! {
        <h1>"Carbon wallet"</h1>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match wallet.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(w) => {
                        let b = w.balances.clone();
                        view! {
                            <dl class="stats">
                                <div><dt>"Available"</dt><dd data-testid="available">{tonnes(b.available_kg)}</dd></div>
                                <div><dt>"Reserved (in listings or bids)"</dt><dd data-testid="reserved">{tonnes(b.reserved_kg)}</dd></div>
                                <div><dt>"Retired"</dt><dd data-testid="retired">{tonnes(b.retired_kg)}</dd></div>
                            </dl>
                            <h2>"Serials you hold"</h2>
                            {if w.holdings.is_empty() {
                                view! { <p class="muted">"No credits yet. Owners receive them when a verifier approves a request; buyers when they buy."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="data">
                                        <thead><tr><th scope="col">"Serials"</th><th scope="col" class="num">"kg"</th><th scope="col">"Vintage"</th><th scope="col">"State"</th></tr></thead>
                                        <tbody>
                                            {w.holdings.into_iter().map(|h| view! {
                                                <tr><td><code>{h.serials}</code></td><td class="num">{h.kg}</td><td>{format!("{} · {}", h.vintage, h.region)}</td><td>{h.account}</td></tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table></div>
                                }.into_any()
                            }}
                            <h2>"Certificates"</h2>
                            {if w.certificates.is_empty() {
                                view! { <p class="muted">"No retirements yet."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="certificates">
                                        {w.certificates.into_iter().map(|c| {
                                            let verify = format!("/verify/{}", c.number);
                                            let pdf = format!("/certificates/{}.pdf", c.number);
                                            view! {
                                                <li>
                                                    <a href=verify>{c.number.clone()}</a>
                                                    {format!(" · {} for {} · {} · ", tonnes(c.quantity_kg), c.beneficiary, c.retired_at.format("%Y-%m-%d"))}
                                                    <a href=pdf download>"PDF"</a>
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                            <h2>"Movements"</h2>
                            {if w.movements.is_empty() {
                                view! { <p class="muted">"Nothing has moved yet."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="data" data-testid="movements">
                                        <thead><tr>
                                            <th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Balance"</th>
                                            <th scope="col" class="num">"kg"</th><th scope="col" class="num">"After"</th><th scope="col">"Serials"</th><th scope="col">"Reference"</th>
                                        </tr></thead>
                                        <tbody>
                                            {w.movements.into_iter().map(|m| view! {
                                                <tr>
                                                    <td class="nowrap">{m.at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                                    <td>{m.kind.replace('_', " ")}</td>
                                                    <td>{m.account}</td>
                                                    <td class="num">{if m.kg > 0 { format!("+{}", m.kg) } else { m.kg.to_string() }}</td>
                                                    <td class="num">{m.balance_after}</td>
                                                    <td>{m.serials.into_iter().map(|s| view! { <code class="serial">{s}</code>" " }).collect_view()}</td>
                                                    <td>{m.reference.unwrap_or_default()}</td>
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
        <section class="card" aria-labelledby="retire-heading">
            <h2 id="retire-heading">"Retire credits"</h2>
            <p class="muted">"Retiring takes credits out of circulation for good, on someone's behalf. The lowest serials go first; you get a certificate anyone can verify."</p>
            <ActionForm action=retire attr:class="grid two">
                <FormError error />
                <Field label="Quantity (kg)" name="quantity_kg" error kind="number" inputmode="numeric" />
                <Field label="Beneficiary" name="beneficiary" error />
                <Field label="Reason" name="reason" error />
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        wallet.await.ok().map(|w| view! {
                            <input type="hidden" name="idempotency_key" value=w.retire_key />
                        })
                    })}
                </Transition>
                <label class="check">
                    <input type="checkbox" name="show_holder" value="on" />
                    " Name me as the holder on the public certificate"
                </label>
                <div class="form-actions">
                    <Submit action=*retire label="Retire" busy="Retiring…" />
                </div>
            </ActionForm>
        </section>
    }
}
