//! The money wallet: balance, top-up through the payment gateway, withdrawals to a bank
//! account, and every movement.

use crate::api::payments::{get_money_wallet, get_payment, RequestWithdrawal, StartTopUp};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, leave_for, reads_as_money, Field, FormError, Submit};
use crate::domain::market::format_money;
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn MoneyPage() -> impl IntoView {
    view! {
        <Title text="Money · EV Carbon Exchange" />
        <RequireRole roles=&[Role::EvOwner, Role::Buyer]>
            <Money />
        </RequireRole>
    }
}

#[component]
fn Money() -> impl IntoView {
    let query = use_query_map();
    let top_up = ServerAction::<StartTopUp>::new();
    let withdraw = ServerAction::<RequestWithdrawal>::new();
    let wallet = Resource::new(move || withdraw.version().get(), |_| get_money_wallet());
    let payment = Resource::new(
        move || query.read().get("payment").filter(|p| !p.is_empty()),
        |number| async move {
            match number {
                Some(n) => Some(get_payment(n).await),
                None => None,
            }
        },
    );
    let top_up_error = error_of(*top_up);
    Effect::new(move |_| {
        if let Some(Ok(t)) = top_up.value().get() {
            leave_for(&t.pay_url);
        }
    });
    let withdraw_error = error_of(*withdraw);
    view! {
        <h1>"Money"</h1>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                payment.await.map(|p| match p {
                    Err(error) => view! { <div class="form-error" role="alert">{error.to_string()}</div> }.into_any(),
                    Ok(p) => {
                        let text = match p.status.as_str() {
                            "succeeded" => format!("Payment {} succeeded.", p.number),
                            "failed" => format!("Payment {} failed: {}", p.number, p.failure.clone().unwrap_or_default()),
                            "expired" => format!("Payment {} expired: nothing was charged.", p.number),
                            _ => format!("Payment {} is waiting for the gateway.", p.number),
                        };
                        let class = if p.status == "succeeded" { "notice success" } else { "notice" };
                        view! {
                            <p class=class role="status" data-testid="payment-status">{text}
                                {p.pay_url.map(|u| view! { " " <a href=u>"Finish paying"</a> })}
                                {p.order.map(|o| view! { " " <a href=format!("/orders/{o}")>{format!("Order {o}")}</a> })}
                            </p>
                        }.into_any()
                    }
                })
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match wallet.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(w) => {
                        let m = {
                            let c = w.currency.clone();
                            move |v| format_money(v, &c)
                        };
                        let rules = w.rules.clone();
                        let amount_reads = reads_as_money(w.currency.clone(), "");
                        view! {
                            <dl class="stats">
                                <div><dt>"Available"</dt><dd data-testid="money-available">{m(w.available)}</dd></div>
                                <div><dt>"Reserved (checkouts, bids, withdrawals)"</dt><dd data-testid="money-held">{m(w.held)}</dd></div>
                            </dl>
                            <div class="columns">
                                <section class="card" aria-labelledby="top-up-heading">
                                    <h2 id="top-up-heading">"Top up"</h2>
                                    <p class="muted">"You pay on the payment gateway's page and come back here; the money is in your wallet as soon as the gateway confirms."</p>
                                    <ActionForm action=top_up attr:class="stack" attr:data-testid="top-up">
                                        <FormError error=top_up_error />
                                        <Field label="Amount" name="amount" error=top_up_error inputmode="decimal" hint=format!("In {}", w.currency) reads=amount_reads />
                                        <Submit action=*top_up label="Continue to payment" busy="Opening the payment page…" />
                                    </ActionForm>
                                </section>
                                <section class="card" aria-labelledby="withdraw-heading">
                                    <h2 id="withdraw-heading">"Withdraw to a bank account"</h2>
                                    <p class="muted">{format!(
                                        "Between {} and {} per withdrawal, {} in 24 hours ({} used). A {} fee is charged. The amount is reserved until an admin pays it out.",
                                        m(rules.min), m(rules.max), m(rules.daily_max), m(rules.used_today), m(rules.fee)
                                    )}</p>
                                    {(!w.kyc_verified).then(|| view! {
                                        <p class="notice warn" role="status" data-testid="kyc-needed">
                                            "Withdrawals need your identity checked first (know your customer). An administrator verifies it; until then your money stays in your wallet."
                                        </p>
                                    })}
                                    <ActionForm action=withdraw attr:class="stack" attr:data-testid="withdraw">
                                        <FormError error=withdraw_error />
                                        <input type="hidden" name="idempotency_key" value=w.withdrawal_key.clone() />
                                        <Field label="Amount" name="amount" error=withdraw_error inputmode="decimal" id="withdraw-amount" reads=amount_reads />
                                        <Field label="Bank" name="bank_name" error=withdraw_error />
                                        <Field label="Account holder" name="account_holder" error=withdraw_error autocomplete="name" />
                                        <Field label="Account number" name="account_number" error=withdraw_error inputmode="numeric" />
                                        <Submit action=*withdraw label="Request withdrawal" busy="Requesting…" />
                                    </ActionForm>
                                </section>
                            </div>
                            {(!w.withdrawals.is_empty()).then(|| view! {
                                <h2>"Withdrawals"</h2>
                                <div class="table-wrap"><table class="data" data-testid="withdrawals">
                                    <thead><tr><th scope="col">"Number"</th><th scope="col">"Requested"</th><th scope="col" class="num">"Amount"</th><th scope="col" class="num">"Fee"</th><th scope="col">"To"</th><th scope="col">"Status"</th></tr></thead>
                                    <tbody>
                                        {w.withdrawals.iter().cloned().map(|x| view! {
                                            <tr>
                                                <td>{x.number}</td><td class="nowrap">{x.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                                <td class="num">{m(x.amount)}</td><td class="num">{m(x.fee)}</td>
                                                <td>{format!("{} {}", x.bank_name, x.account_number)}</td>
                                                <td><span class=format!("status status-{}", x.status)>{x.status.clone()}</span>
                                                    {(!x.decision_note.is_empty()).then(|| view! { <div class="muted small">{x.decision_note.clone()}</div> })}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table></div>
                            })}
                            {(!w.payments.is_empty()).then(|| view! {
                                <h2>"Payments"</h2>
                                <div class="table-wrap"><table class="data" data-testid="payments">
                                    <thead><tr><th scope="col">"Number"</th><th scope="col">"Started"</th><th scope="col">"For"</th><th scope="col" class="num">"Amount"</th><th scope="col">"Status"</th></tr></thead>
                                    <tbody>
                                        {w.payments.iter().cloned().map(|p| view! {
                                            <tr>
                                                <td>{p.number}</td><td class="nowrap">{p.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                                <td>{match p.order { Some(o) => format!("Checkout of {o}"), None => "Top-up".into() }}</td>
                                                <td class="num">{m(p.amount)}</td>
                                                <td><span class=format!("status status-{}", p.status)>{p.status.clone()}</span>
                                                    {p.pay_url.map(|u| view! { " " <a href=u>"Pay"</a> })}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table></div>
                            })}
                            <h2>"Movements"</h2>
                            {if w.movements.is_empty() {
                                view! { <p class="muted">"No money has moved yet."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="data" data-testid="money-movements">
                                        <thead><tr><th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Balance"</th><th scope="col" class="num">"Amount"</th><th scope="col" class="num">"After"</th><th scope="col">"Reference"</th></tr></thead>
                                        <tbody>
                                            {w.movements.iter().cloned().map(|x| view! {
                                                <tr>
                                                    <td class="nowrap">{x.at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                                    <td>{x.kind.replace('_', " ")}</td><td>{x.account}</td>
                                                    <td class="num">{if x.amount.is_sign_positive() { format!("+{}", m(x.amount)) } else { m(x.amount) }}</td>
                                                    <td class="num">{m(x.balance_after)}</td>
                                                    <td>{x.reference.unwrap_or_default()}</td>
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
