//! Disputes for the admin: open ones oldest first, each refunded or rejected once, with the
//! order one click away.

use crate::api::disputes::{dispute_queue, DecideDispute};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, FormError};
use crate::domain::market::{format_money, tonnes};
use crate::domain::user::Role;
use crate::pages::orders::DisputeFacts;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn DisputesPage() -> impl IntoView {
    view! {
        <Title text="Disputes · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Admin]>
            <Disputes />
        </RequireRole>
    }
}

const FILTERS: [(&str, &str); 4] = [
    ("open", "Open"),
    ("refunded", "Refunded"),
    ("rejected", "Rejected"),
    ("all", "All"),
];

#[component]
fn Disputes() -> impl IntoView {
    let query = use_query_map();
    let status = move || query.read().get("status").unwrap_or_else(|| "open".into());
    let decide = ServerAction::<DecideDispute>::new();
    let list = Resource::new(
        move || (status(), decide.version().get()),
        |(s, _)| dispute_queue(Some(s)),
    );
    let error = error_of(*decide);
    view! {
        <h1>"Disputes"</h1>
        <nav class="tabs" aria-label="Which disputes">
            {FILTERS.iter().map(|(key, label)| {
                let current = move || status() == *key;
                view! { <a href=format!("/admin/disputes?status={key}") class:current=current aria-current=move || current().then_some("page")>{*label}</a> }
            }).collect_view()}
        </nav>
        <FormError error />
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match list.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(d) if d.disputes.is_empty() => view! { <p class="notice">"No disputes here."</p> }.into_any(),
                    Ok(d) => {
                        let currency = d.currency.clone();
                        view! {
                            <div class="dispute-list" data-testid="dispute-queue">
                                {d.disputes.into_iter().map(|x| {
                                    let open = x.status == "open";
                                    let n1 = x.number.clone();
                                    let decide_label = format!("Decide {}", x.number);
                                    let back = x.returnable_kg.unwrap_or(0);
                                    let returnable = if back == x.order_kg {
                                        format!("A refund returns {} to the buyer and all {} of credits to the seller.", format_money(x.order_total, &currency), tonnes(back))
                                    } else {
                                        format!(
                                            "A refund returns {} to the buyer, but only {} of the {} of credits to the seller: the buyer has retired or listed again the other {}, which stay with them.",
                                            format_money(x.order_total, &currency), tonnes(back), tonnes(x.order_kg), tonnes(x.order_kg - back)
                                        )
                                    };
                                    let note_id = format!("note-{}", x.number);
                                    let summary = format!(
                                        "{} · {} bought {} from {} for {}",
                                        x.order, x.buyer_name, tonnes(x.order_kg), x.seller_name, format_money(x.order_total, &currency)
                                    );
                                    let order_href = format!("/orders/{}", x.order);
                                    view! {
                                        <article class="card dispute-card">
                                            <p><a href=order_href>{summary}</a></p>
                                            <DisputeFacts d=x currency=currency.clone() />
                                            {open.then(|| view! {
                                                <ActionForm action=decide attr:class="decide">
                                                    <input type="hidden" name="dispute" value=n1 />
                                                    <p class="notice" data-testid="returnable">{returnable}</p>
                                                    <fieldset>
                                                        <legend>{decide_label}</legend>
                                                        <label><input type="radio" name="decision" value="refund" required />
                                                            " Refund: everything the buyer paid goes back; the credits they have not retired return to the seller"</label>
                                                        <label><input type="radio" name="decision" value="reject" />
                                                            " Reject: the order stands"</label>
                                                    </fieldset>
                                                    <div class="field">
                                                        <label for=note_id.clone()>"Note to both parties (required to reject)"</label>
                                                        <textarea id=note_id name="note" rows="2" maxlength="2000"></textarea>
                                                    </div>
                                                    <button type="submit" class="button small">"Decide"</button>
                                                </ActionForm>
                                            })}
                                        </article>
                                    }
                                }).collect_view()}
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
