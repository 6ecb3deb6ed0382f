//! Wallets and cash flow for the admin: the reconciliation (SPEC §6: every asset's entries sum
//! to zero, no user balance negative, balances equal their entries, serials match), where the
//! money and the credits are, fee income, pending withdrawals, and every money movement.

use crate::api::operations::platform_money;
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::paging::Pager;
use crate::domain::market::{format_money, tonnes};
use crate::domain::user::Role;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use rust_decimal::prelude::ToPrimitive;

#[component]
pub fn PlatformMoneyPage() -> impl IntoView {
    view! {
        <Title text="Money and reconciliation · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Admin]>
            <PlatformMoney />
        </RequireRole>
    }
}

#[component]
fn PlatformMoney() -> impl IntoView {
    let query = use_query_map();
    let money = Resource::new(move || query.read().get("page"), platform_money);
    view! {
        <h1>"Money and reconciliation"</h1>
        <Transition fallback=|| view! { <p class="loading" role="status">"Checking the ledger…"</p> }>
            {move || Suspend::new(async move {
                match money.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(f) => {
                        let c = f.currency.clone();
                        let m = move |v| format_money(v, &c);
                        view! {
                            {if f.reconciled {
                                view! { <p class="notice ok" role="status" data-testid="reconciliation">
                                    {format!("Reconciled at {}: every asset's entries sum to zero, every balance equals its entries, no user balance is negative, holds and serials match.", f.checked_at.format("%Y-%m-%d %H:%M:%S UTC"))}
                                </p> }.into_any()
                            } else {
                                view! { <div class="form-error" role="alert" data-testid="reconciliation">
                                    <p>"The ledger does not reconcile:"</p>
                                    <ul>{f.problems.iter().cloned().map(|p| view! { <li>{p}</li> }).collect_view()}</ul>
                                </div> }.into_any()
                            }}
                            <dl class="stats">
                                <div><dt>"Fee income"</dt><dd data-testid="fee-income">{m(f.fee_income)}</dd></div>
                                <div><dt>"Pending withdrawals"</dt><dd><a href="/admin/withdrawals">{format!("{} · {}", f.pending_withdrawals, m(f.pending_withdrawal_amount))}</a></dd></div>
                                {f.entry_sums.iter().map(|(asset, sum, n)| view! {
                                    <div><dt>{format!("Σ {asset} entries")}</dt><dd>{format!("{} over {n} entries", sum.normalize())}</dd></div>
                                }).collect_view()}
                            </dl>
                            <h2>"Balances by kind of account"</h2>
                            <div class="table-wrap"><table class="data" data-testid="balances">
                                <thead><tr><th scope="col">"Asset"</th><th scope="col">"Held by"</th><th scope="col" class="num">"Balance"</th><th scope="col" class="num">"Accounts"</th></tr></thead>
                                <tbody>
                                    {f.balances.iter().map(|b| view! {
                                        <tr>
                                            <td>{b.asset.clone()}</td>
                                            <td>{b.holder.clone()}</td>
                                            <td class="num">{if b.asset == "money" { m(b.amount) } else { tonnes(b.amount.to_i64().unwrap_or(0)) }}</td>
                                            <td class="num">{b.accounts}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                            <p class="muted small">"Gateway clearing is negative by design: it is the money the payment gateway holds for the platform (top-ups in, payouts out)."</p>
                            <h2>"Money movements"</h2>
                            <div class="table-wrap"><table class="data" data-testid="money-moves">
                                <thead><tr><th scope="col">"#"</th><th scope="col">"When"</th><th scope="col">"Kind"</th><th scope="col">"Reference"</th>
                                    <th scope="col">"Between"</th><th scope="col" class="num">"Amount"</th><th scope="col">"Memo"</th></tr></thead>
                                <tbody>
                                    {f.moves.iter().map(|t| view! {
                                        <tr>
                                            <td>{t.id}</td>
                                            <td class="nowrap">{t.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                            <td>{t.kind.replace('_', " ")}</td>
                                            <td>{t.reference.clone().unwrap_or_default()}</td>
                                            <td>{t.parties.clone().unwrap_or_default().replace('_', " ")}</td>
                                            <td class="num">{t.amount.map(&m).unwrap_or_default()}</td>
                                            <td>{t.memo.clone()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table></div>
                            <Pager page=f.page pages=f.pages newest_first=true href=|p| format!("/admin/money?page={p}") />
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
