//! EV Carbon Exchange: the application shared by the server (feature `ssr`) and the browser
//! (feature `hydrate`).

pub mod api;
pub mod components;
pub mod domain;
pub mod error;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use components::auth::Auth;
use components::nav::Header;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};
use pages::{account, admin, buyer, cva, home, money, orders, owner, public, reports, wallet};

/// The HTML document around the app; rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        leptos::nonce::provide_nonce();
        content_security_policy();
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
                {sandbox_notice().then(|| {
                    view! {
                        <p class="sandbox-notice" role="note">
                            "Test payments: top-ups and checkouts go through the sandbox gateway. No real money moves."
                        </p>
                    }
                })}
            </body>
        </html>
    }
}

/// Scripts run only from our own origin or with this response's nonce.
/// In production with the sandbox gateway switched on (EVCX_SANDBOX_PAYMENTS), every page says
/// so: its wallets fill without real money. Outside `<App/>`, so hydration never sees it.
fn sandbox_notice() -> bool {
    #[cfg(feature = "ssr")]
    {
        use_context::<server::AppState>()
            .is_some_and(|s| s.config.payments.sandbox && !s.config.dev_mode)
    }
    #[cfg(not(feature = "ssr"))]
    {
        false
    }
}

#[cfg(feature = "ssr")]
fn content_security_policy() {
    if let (Some(nonce), Some(options)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        let policy = format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; \
             object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
        );
        if let Ok(value) = http::HeaderValue::from_str(&policy) {
            options.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Auth::provide();
    components::live::InboxFeed::provide();
    // Marks the page once the browser has taken over, so tests wait for it instead of sleeping.
    Effect::new(|_| {
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/evcx.css" />
        <Title text="EV Carbon Exchange" />
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <Header />
            <main id="main" tabindex="-1">
                <Routes fallback=|| view! { <components::errors::NotFound /> }>
                    <Route path=path!("/") view=home::HomePage ssr=SsrMode::Async />
                    <Route path=path!("/login") view=public::login::LoginPage ssr=SsrMode::Async />
                    <Route path=path!("/signup") view=public::signup::SignUpPage ssr=SsrMode::Async />
                    <Route path=path!("/signup/confirm") view=public::signup::FinishSignUpPage ssr=SsrMode::Async />
                    <Route
                        path=path!("/forgot-password")
                        view=public::password_reset::ForgotPasswordPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/reset-password")
                        view=public::password_reset::ResetPasswordPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/profile") view=account::profile::ProfilePage ssr=SsrMode::Async />
                    <Route path=path!("/notifications") view=account::notifications::NotificationsPage ssr=SsrMode::Async />
                    <Route path=path!("/notifications/settings") view=account::notifications::NotificationSettingsPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/users") view=admin::users::UsersPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/methodology") view=admin::methodology::MethodologyPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/audit") view=admin::audit::AuditPage ssr=SsrMode::Async />
                    <Route path=path!("/dashboard") view=owner::dashboard::DashboardPage ssr=SsrMode::Async />
                    <Route path=path!("/trips") view=owner::trips::TripsPage ssr=SsrMode::Async />
                    <Route path=path!("/charging") view=owner::charging::ChargingPage ssr=SsrMode::Async />
                    <Route path=path!("/credits") view=owner::credits::CreditsPage ssr=SsrMode::Async />
                    <Route path=path!("/credits/:id") view=owner::credits::RequestPage ssr=SsrMode::Async />
                    <Route path=path!("/cva") view=cva::queue::QueuePage ssr=SsrMode::Async />
                    <Route path=path!("/cva/report") view=cva::report::IssuanceReportPage ssr=SsrMode::Async />
                    <Route path=path!("/wallet") view=wallet::WalletPage ssr=SsrMode::Async />
                    <Route path=path!("/market") view=buyer::market::MarketPage ssr=SsrMode::Async />
                    <Route path=path!("/market/trends") view=buyer::trends::TrendsPage ssr=SsrMode::Async />
                    <Route path=path!("/market/:number") view=buyer::listing::ListingPage ssr=SsrMode::Async />
                    <Route path=path!("/auctions") view=buyer::auctions::AuctionsPage ssr=SsrMode::Async />
                    <Route path=path!("/auctions/:number") view=buyer::auctions::AuctionPage ssr=SsrMode::Async />
                    <Route path=path!("/sell") view=owner::listings::SellPage ssr=SsrMode::Async />
                    <Route path=path!("/orders") view=orders::OrdersPage ssr=SsrMode::Async />
                    <Route path=path!("/orders/:number") view=orders::OrderPage ssr=SsrMode::Async />
                    <Route path=path!("/money") view=money::MoneyPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/withdrawals") view=admin::withdrawals::WithdrawalsPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/settings") view=admin::settings::SettingsPage ssr=SsrMode::Async />
                    <Route path=path!("/reports") view=reports::ReportsPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/disputes") view=admin::disputes::DisputesPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/transactions") view=admin::transactions::TransactionsPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/money") view=admin::money::PlatformMoneyPage ssr=SsrMode::Async />
                    <Route path=path!("/verify/:number") view=public::verify::VerifyPage ssr=SsrMode::Async />
                    <Route path=path!("/cva/requests/:id") view=cva::review::ReviewPage ssr=SsrMode::Async />
                    <Route path=path!("/vehicles") view=owner::vehicles::VehiclesPage ssr=SsrMode::Async />
                    <Route path=path!("/vehicles/:id") view=owner::vehicles::VehiclePage ssr=SsrMode::Async />
                    <Route path=path!("/import") view=owner::import::ImportPage ssr=SsrMode::Async />
                    <Route path=path!("/imports/:id") view=owner::import::ImportReportPage ssr=SsrMode::Async />
                </Routes>
            </main>
            <footer class="site-footer">
                <p>"EV Carbon Exchange — verified carbon credits from electric driving."</p>
            </footer>
        </Router>
    }
}
