//! Fees and withdrawal limits: the admin changes them here; every change is in the audit trail.

use crate::api::settings::{get_fee_settings, UpdateFeeSettings};
use crate::components::auth::RequireRole;
use crate::components::errors::ErrorPanel;
use crate::components::form::{error_of, succeeded, Field, FormError, Submit};
use crate::domain::market::{format_money, money_plain};
use crate::domain::user::Role;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use rust_decimal::Decimal;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Fees and limits · EV Carbon Exchange" />
        <RequireRole roles=&[Role::Admin]>
            <Settings />
        </RequireRole>
    }
}

fn plain(d: Decimal) -> String {
    d.normalize().to_string()
}

#[component]
fn Settings() -> impl IntoView {
    let update = ServerAction::<UpdateFeeSettings>::new();
    let settings = Resource::new(move || update.version().get(), |_| get_fee_settings());
    let error = error_of(*update);
    let saved = succeeded(*update);
    view! {
        <h1>"Fees and limits"</h1>
        <p class="muted">"Changes apply to sales and withdrawals from the moment they are saved; orders and withdrawals already made keep their amounts. Every change is recorded in the " <a href="/admin/audit?entity=platform_settings">"audit trail"</a> "."</p>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Err(error) => view! { <ErrorPanel error /> }.into_any(),
                    Ok(s) => {
                        let hundred = Decimal::from(100);
                        view! {
                            <ActionForm action=update attr:class="grid two card" attr:data-testid="fee-settings">
                                <FormError error />
                                {move || saved.get().then(|| view! { <p class="notice success" role="status">"Saved."</p> })}
                                <Field label="Buyer's fee (%)" name="buyer_fee_percent" error inputmode="decimal" value=plain(s.buyer_fee_rate * hundred) />
                                <Field label="Seller's fee (%)" name="seller_fee_percent" error inputmode="decimal" value=plain(s.seller_fee_rate * hundred) />
                                <Field label="Smallest withdrawal" name="withdrawal_min" error inputmode="decimal" value=money_plain(s.withdrawal_min, &s.currency) />
                                <Field label="Largest withdrawal" name="withdrawal_max" error inputmode="decimal" value=money_plain(s.withdrawal_max, &s.currency) />
                                <Field label="Withdrawals per user in 24 hours" name="withdrawal_daily_max" error inputmode="decimal" value=money_plain(s.withdrawal_daily_max, &s.currency) />
                                <Field label="Fee per withdrawal" name="withdrawal_fee" error inputmode="decimal" value=money_plain(s.withdrawal_fee, &s.currency) />
                                <Field label="Auction soft close (seconds)" name="soft_close_secs" error inputmode="numeric" value=s.soft_close_secs.to_string()
                                    hint="A bid this close to an auction's end moves the end this much later; 0 ends auctions on time. Applies to auctions listed from now on." />
                                <Field label="New auctions last (hours)" name="auction_default_hours" error inputmode="numeric" value=s.auction_default_hours.to_string()
                                    hint="The length the new-auction form offers; sellers may choose 1 minute to 30 days." />
                                <Field label="Dispute window (days)" name="dispute_window_days" error inputmode="numeric" value=s.dispute_window_days.to_string()
                                    hint="A buyer may dispute a completed order for this many days after it completes." />
                                <p class="muted">{format!("Amounts in {}. Last changed {}. Current withdrawal fee: {}.", s.currency, s.updated_at.format("%Y-%m-%d %H:%M UTC"), format_money(s.withdrawal_fee, &s.currency))}</p>
                                <div class="form-actions"><Submit action=*update label="Save" busy="Saving…" /></div>
                            </ActionForm>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
