//! Each role's report (SPEC §9) with its CSV and PDF, and the price suggestion and trends.

use super::market::{buy, seller_with_listing};
use super::support::{field_error, json, Api, TestApp};
use app::domain::user::Role;
use serde_json::Value;
use sqlx::PgPool;

/// The report's current bucket (the last row) as `column label → value`.
fn last_row(report: &Value) -> std::collections::HashMap<String, String> {
    let r = &report["report"];
    let row = r["rows"].as_array().unwrap().last().unwrap();
    r["columns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(row["values"].as_array().unwrap())
        .map(|(c, v)| {
            (
                c["label"].as_str().unwrap().to_owned(),
                v.as_str()
                    .unwrap()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
                    .normalize()
                    .to_string(),
            )
        })
        .collect()
}

async fn download(api: &Api, url: &str) -> (u16, String, Vec<u8>) {
    let res = api.get(url).await;
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.bytes().await.unwrap().to_vec())
}

#[sqlx::test(migrations = "../migrations")]
async fn each_role_reads_its_report_as_a_page_csv_and_pdf(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (owner, _, listing) = seller_with_listing(&app, 2_000, "200000", "0.1").await;
    let (buyer, _) = app.signed_in(Role::Buyer).await;
    buyer.top_up("1000000").await;
    let (status, body) = buy(&buyer, &listing, "0.5", "report-order-001").await;
    assert_eq!(status, 200, "{body}");
    let res = buyer
        .post(
            "/api/wallet/retire",
            &[
                ("quantity_kg", "200"),
                ("beneficiary", "Xanh Co"),
                ("reason", "Q4"),
                ("idempotency_key", "retire-key-0001"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);

    // The owner: 2 t issued, 0.5 t sold for 100,000 less the 2,500 seller fee.
    let (status, mine) = json(owner.post("/api/reports/mine", &[]).await).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["report"]["title"], "Your CO₂, credits and revenue");
    assert_eq!(mine["report"]["rows"].as_array().unwrap().len(), 12);
    let now = last_row(&mine);
    assert_eq!(now["Credits issued"], "2000");
    assert_eq!(now["Credits sold"], "500");
    assert_eq!(now["Revenue"], "97500");
    assert_eq!(now["Seller fees"], "2500");
    assert_eq!(mine["charts_svg"].as_array().unwrap().len(), 2);
    assert!(mine["charts_svg"][0].as_str().unwrap().starts_with("<svg"));

    // The same figures as CSV: units in the header, plain numbers, a total line.
    let (status, kind, csv) = download(&owner, mine["csv_url"].as_str().unwrap()).await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "period_start",
            "period",
            "CO₂ avoided (kg)",
            "Trips",
            "Credits issued (kg)",
            "Credits sold (kg)",
            "Revenue (VND)",
            "Seller fees (VND)"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 13);
    let total = records.last().unwrap();
    assert_eq!((&total[1], &total[5], &total[6]), ("Total", "500", "97500"));
    let (status, kind, pdf) = download(&owner, mine["pdf_url"].as_str().unwrap()).await;
    assert_eq!((status, kind.as_str()), (200, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(String::from_utf8_lossy(&pdf).matches("/Type /Page").count() >= 1);

    // The buyer: one order of 0.5 t, 102,500 paid with the fee, 200 kg retired.
    let (_, theirs) = json(buyer.post("/api/reports/mine", &[("by", "year")]).await).await;
    assert_eq!(theirs["report"]["title"], "Your purchases and retirements");
    let now = last_row(&theirs);
    assert_eq!(
        (
            now["Orders"].as_str(),
            now["Credits bought"].as_str(),
            now["Paid"].as_str()
        ),
        ("1", "500", "102500")
    );
    assert_eq!(
        (now["Buyer fees"].as_str(), now["Credits retired"].as_str()),
        ("2500", "200")
    );

    // The admin: the platform's trade, fees from both sides, credits and users.
    let (admin, _) = app.signed_in(Role::Admin).await;
    let (_, platform) = json(
        admin
            .post(
                "/api/reports/mine",
                &[("by", "day"), ("from", "2026-01-01"), ("to", "2026-12-31")],
            )
            .await,
    )
    .await;
    let days = platform["report"]["rows"].as_array().unwrap().len();
    assert_eq!(days, 365);
    let today = chrono::Utc::now().date_naive();
    let (_, platform) = json(
        admin
            .post(
                "/api/reports/mine",
                &[
                    ("by", "day"),
                    ("from", &today.to_string()),
                    ("to", &today.to_string()),
                ],
            )
            .await,
    )
    .await;
    let now = last_row(&platform);
    assert_eq!(
        (now["Trades"].as_str(), now["Volume traded"].as_str()),
        ("1", "500")
    );
    assert_eq!(
        (now["Value traded"].as_str(), now["Fees"].as_str()),
        ("100000", "5000")
    );
    // Seller, buyer, the verifier who approved the grant, the admin.
    assert_eq!(
        now["Users"],
        app.count("SELECT count(*) FROM users").await.to_string()
    );
    let (status, _, pdf) = download(&admin, platform["pdf_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(pdf.starts_with(b"%PDF-"));

    // Refusals: the verifier has the issuance report instead; bad periods say why.
    let (cva, _) = app.signed_in(Role::Cva).await;
    assert_eq!(cva.post("/api/reports/mine", &[]).await.status(), 403);
    let (status, body) = json(
        owner
            .post(
                "/api/reports/mine",
                &[("by", "week"), ("from", "2026-13-01")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        field_error(&body, "by").is_some() || field_error(&body, "from").is_some(),
        "{body}"
    );
    let (status, body) = json(
        owner
            .post(
                "/api/reports/mine",
                &[("by", "day"), ("from", "2020-01-01"), ("to", "2026-01-01")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "to")
        .unwrap()
        .starts_with("That is more than 366 days"));
    let (status, body) = json(
        owner
            .post(
                "/api/reports/mine",
                &[("from", "2026-05-01"), ("to", "2026-04-01")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        field_error(&body, "to").as_deref(),
        Some("The end date is before the start date.")
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn the_price_suggestion_rests_on_trades_and_is_deterministic(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let visitor = app.client();
    let ask = || async {
        json(
            visitor
                .post(
                    "/api/market/price-suggestion",
                    &[("region", "vn"), ("vintage", "2026")],
                )
                .await,
        )
        .await
    };
    // No trades yet: the labelled rule-based default.
    let (status, first) = ask().await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["rule_based"], true);
    assert_eq!(first["price_per_t"], "200000");
    assert!(first["basis"]
        .as_str()
        .unwrap()
        .starts_with("Rule-based default"));

    // Five purchases at 200,000 ten days ago, one at 210,000 today: an estimate from them.
    let (owner, _, listing) = seller_with_listing(&app, 5_000, "200000", "0.1").await;
    let (buyer, _) = app.signed_in(Role::Buyer).await;
    buyer.top_up("5000000").await;
    for i in 0..5 {
        let (status, body) = buy(&buyer, &listing, "0.5", &format!("suggest-order-{i:04}")).await;
        assert_eq!(status, 200, "{body}");
    }
    sqlx::query("UPDATE orders SET completed_at = completed_at - interval '10 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    let res = owner
        .post(
            "/api/listings/price",
            &[("listing", &listing), ("price", "210000")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let (status, body) = buy(&buyer, &listing, "0.5", "suggest-order-0005").await;
    assert_eq!(status, 200, "{body}");
    let (_, s) = ask().await;
    assert_eq!(s["rule_based"], false, "{s}");
    assert_eq!(s["trades"], 6);
    assert_eq!(s["price_per_t"], "200000.00");
    assert_eq!(
        (s["low"].as_str(), s["high"].as_str()),
        (Some("200000.00"), Some("210000.00"))
    );
    assert_eq!(s["basis"], "VN 2026 trades of the last year");
    // The back-test predicted the sixth from the five before it: 200,000 for 210,000.
    assert_eq!(s["backtest_trades"], 1);
    assert_eq!(s["backtest_error_percent"], "4.8");
    let (_, again) = ask().await;
    assert_eq!(again, s, "the same trades give the same answer");

    let (_, trends) = json(visitor.post("/api/market/trends", &[]).await).await;
    let class = &trends["classes"][0];
    assert_eq!(
        (class["region"].as_str(), class["vintage"].as_i64()),
        (Some("VN"), Some(2026))
    );
    let points = class["points"].as_array().unwrap();
    let sum = |k: &str| points.iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!((sum("trades"), sum("kg")), (6, 3000));
    // Ten days ago may be last month or this one.
    let mut averages: Vec<&str> = points
        .iter()
        .filter_map(|p| p["average_per_t"].as_str())
        .collect();
    averages.sort();
    assert!(
        averages == ["200000.00", "210000.00"] || averages == ["201666.67"],
        "{averages:?}"
    );
    assert_eq!(class["suggestion"], s);

    let (status, body) = json(
        visitor
            .post(
                "/api/market/price-suggestion",
                &[("region", ""), ("vintage", "1850")],
            )
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert!(field_error(&body, "region").is_some() && field_error(&body, "vintage").is_some());
}
