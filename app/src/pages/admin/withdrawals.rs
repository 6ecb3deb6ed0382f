//! Withdrawals for the admin: pending ones oldest first, each paid out or rejected once.

use crate::api::payments::{withdrawal_queue, DecideWithdrawal};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, FormError};
use crate::domain::market::format_money;
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn WithdrawalsPage() -> impl IntoView {
    view! {
        <Title text="Withdrawals · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Admin]>
            <Withdrawals />
        </RequireRole>
    }
}

#[component]
fn Withdrawals() -> impl IntoView {
    let query = use_query_map();
    let status = move || {
        query
            .read()
            .get("status")
            .unwrap_or_else(|| "pending".into())
    };
    let decide = ServerAction::<DecideWithdrawal>::new();
    let list = Resource::new(
        move || (status(), decide.version().get()),
        |(s, _)| withdrawal_queue(Some(s)),
    );
    let error = error_of(*decide);
    let option = move |value: &'static str, label: &'static str| {
        view! { <option value=value selected=move || status() == value>{label}</option> }
    };
    view! {
        <h1>"Withdrawals"</h1>
        <form method="get" action="/admin/withdrawals" class="filters">
            <div class="field">
                <label for="w-status">"Status"</label>
                <select id="w-status" name="status">
                    {option("pending", "Pending")}
                    {option("paid", "Paid")}
                    {option("rejected", "Rejected")}
                    {option("all", "All")}
                </select>
            </div>
            <button type="submit" class="button">"Show"</button>
        </form>
        <FormError error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(p) if p.withdrawals.is_empty() => view! { <p class="notice">"No withdrawals here."</p> }.into_any(),
                    Ok(p) => {
                        let currency = p.currency.clone();
                        view! {
                        <div class="table-wrap"><table class="data" data-testid="withdrawal-queue">
                            <thead><tr>
                                <th scope="col">"Number"</th><th scope="col">"Requested"</th><th scope="col">"User"</th>
                                <th scope="col" class="num">"Amount"</th><th scope="col" class="num">"Fee"</th><th scope="col">"Bank account"</th>
                                <th scope="col">"Status"</th><th scope="col">"Decide"</th>
                            </tr></thead>
                            <tbody>
                                {p.withdrawals.into_iter().map(|w| {
                                    let pending = w.status == "pending";
                                    let (n1, n2) = (w.number.clone(), w.number.clone());
                                    let pay_label = format!("Pay {}", w.number);
                                    let (note_id, note_label) = (format!("note-{}", w.number), format!("Why {} is rejected", w.number));
                                    view! {
                                        <tr>
                                            <td>{w.number.clone()}</td>
                                            <td class="nowrap">{w.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                            <td>{w.user_name.clone()}<div class="muted small">{w.user_email.clone()}</div></td>
                                            <td class="num">{format_money(w.amount, &currency)}</td>
                                            <td class="num">{format_money(w.fee, &currency)}</td>
                                            <td>{format!("{} · {} · {}", w.bank_name, w.account_holder, w.account_number)}</td>
                                            <td><span class=format!("status status-{}", w.status)>{w.status.clone()}</span>
                                                {w.decided_by.clone().map(|d| view! { <div class="muted small">{format!("by {d}: {}", w.decision_note)}</div> })}</td>
                                            <td class="row-actions">
                                                {pending.then(|| view! {
                                                    <ActionForm action=decide attr:class="inline">
                                                        <input type="hidden" name="withdrawal" value=n1 />
                                                        <input type="hidden" name="decision" value="approve" />
                                                        <button type="submit" class="button small">{pay_label}</button>
                                                    </ActionForm>
                                                    <ActionForm action=decide attr:class="inline">
                                                        <input type="hidden" name="withdrawal" value=n2 />
                                                        <input type="hidden" name="decision" value="reject" />
                                                        <label class="visually-hidden" for=note_id.clone()>{note_label}</label>
                                                        <input id=note_id name="note" placeholder="Reason to reject" size="16" />
                                                        <button type="submit" class="button small danger">"Reject"</button>
                                                    </ActionForm>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
