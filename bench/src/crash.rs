//! `crash`: the release server on its own embedded PostgreSQL (fsync on) under a few clients
//! doing purchases, checkouts (paid on the sandbox gateway), bids, buy-nows, retirements,
//! top-ups, withdrawals, new auctions and new listings. At a random moment of each cycle it
//! kills the server, its PostgreSQL or both with SIGKILL (a PostgreSQL killed alone: the server
//! is then stopped with SIGTERM and must exit by itself), starts the server again (which
//! recovers the database) and checks the recorded history against the database:
//!
//! - every acknowledged operation (2xx) is there and complete (`lost` otherwise);
//! - every refused one (4xx, or a connection that never opened) left no trace, and every one
//!   whose answer was lost (connection cut, 5xx) is all there or not at all (`half_done`
//!   otherwise);
//! - the ledger reconciles (as `ledger::reconcile`), no user balance is negative, every
//!   listing's sold and pending kilograms are those of its orders (`violations` otherwise).
//!
//! Each cycle checks the operations it recorded; the end checks all of them again (an
//! acknowledged write must survive every later crash too). Last, SIGTERM under load: the
//! requests in flight must get their answers and the server must exit within 10 s.
//!
//! Random kill moments and victims come from a seed printed first (`--seed` repeats a run).

use crate::harness::{self, bench_line};
use anyhow::{bail, ensure, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::cookie::Jar;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-crash-2026";
/// Money in each buyer's wallet at the start (VND): a checkout of 0.5 t often needs the gateway.
const MONEY: &str = "300000";
/// Auctions kept open by the seller client.
const OPEN_AUCTIONS: usize = 30;
/// The most the SIGTERM'd server may take to exit.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
enum Kind {
    Buy,
    Checkout,
    Pay,
    Bid,
    BuyNow,
    Retire,
    TopUp,
    Withdraw,
    Auction,
    List,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Buy => "buy",
            Kind::Checkout => "checkout",
            Kind::Pay => "pay",
            Kind::Bid => "bid",
            Kind::BuyNow => "buy_now",
            Kind::Retire => "retire",
            Kind::TopUp => "top_up",
            Kind::Withdraw => "withdraw",
            Kind::Auction => "auction",
            Kind::List => "list",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// 2xx (3xx for the gateway's page): acknowledged.
    Ok,
    /// A refusal (4xx, 503 busy) or a connection that never opened: nothing may be done.
    Failed(u16),
    /// The answer was lost (connection cut, timeout, 5xx): all or nothing.
    Unknown(String),
}

/// One operation of the history: who, what with which identifying inputs, and how it ended.
#[derive(Clone, Debug)]
struct Op {
    client: usize,
    kind: Kind,
    /// The caller's user id.
    user: String,
    /// The idempotency key, or what else identifies the operation (a description, an amount,
    /// a payment id).
    key: String,
    /// The listing or auction number it is about.
    target: String,
    quantity_kg: i64,
    outcome: Outcome,
    /// What the server answered: an order, certificate, payment or withdrawal number, a listing
    /// number, a bid's version.
    answer: String,
    /// A refusal's answer (its start), for the summary.
    refusal: String,
    started: Instant,
    ended: Instant,
}

/// What the clients share with the cycle driver.
struct Shared {
    base: String,
    /// Clients start operations only while this is set (the driver clears it to restart and
    /// check, then waits for `in_flight` to drop to 0).
    up: AtomicBool,
    stop: AtomicBool,
    in_flight: AtomicUsize,
    /// Grows at every restart: clients then open new connections.
    generation: AtomicU64,
    next_id: AtomicU64,
    history: Mutex<Vec<Op>>,
    /// Fixed-price listings open to buy.
    listings: Mutex<Vec<String>>,
    /// Open auctions and the next maximum to bid on each.
    auctions: Mutex<Vec<(String, i64)>>,
    users: HashMap<String, String>,
}

impl Shared {
    fn record(&self, op: Op) {
        self.history.lock().unwrap().push(op);
    }
    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, SeqCst)
    }
}

/// One client: a user with a cookie jar kept across restarts.
struct Client {
    jar: Arc<Jar>,
    http: reqwest::Client,
    generation: u64,
    user: String,
}

fn http_client(jar: &Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(2)
        .build()
        .expect("http client")
}

impl Client {
    async fn login(shared: &Shared, email: &str) -> anyhow::Result<Client> {
        let jar = Arc::new(Jar::default());
        let http = http_client(&jar);
        let r = http
            .post(format!("{}/api/users/login", shared.base))
            .header("accept", "application/json")
            .form(&[("email", email), ("password", PASSWORD)])
            .send()
            .await?;
        ensure!(
            r.status().is_success(),
            "signing in {email}: {}",
            r.status()
        );
        Ok(Client {
            jar,
            http,
            generation: shared.generation.load(SeqCst),
            user: shared.users[email].clone(),
        })
    }

    fn refresh(&mut self, shared: &Shared) {
        let g = shared.generation.load(SeqCst);
        if g != self.generation {
            self.http = http_client(&self.jar);
            self.generation = g;
        }
    }

    /// POSTs a form; answers the outcome and the body.
    async fn post(&self, base: &str, path: &str, form: &[(&str, &str)]) -> (Outcome, String) {
        let r = self
            .http
            .post(format!("{base}{path}"))
            .header("accept", "application/json")
            .form(form)
            .send()
            .await;
        match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await;
                match (status, body) {
                    (200..=399, Ok(body)) => (Outcome::Ok, body),
                    (200..=399, Err(e)) => (
                        Outcome::Unknown(format!("{status}, body lost: {e}")),
                        String::new(),
                    ),
                    // Busy: the server says nothing was done (checked as a refusal).
                    (503, body) => (Outcome::Failed(503), body.unwrap_or_default()),
                    (500..=599, body) => (
                        Outcome::Unknown(format!("{status}")),
                        body.unwrap_or_default(),
                    ),
                    (_, body) => (Outcome::Failed(status), body.unwrap_or_default()),
                }
            }
            // The request never reached a server.
            Err(e) if e.is_connect() => (Outcome::Failed(0), format!("{e}")),
            Err(e) => (Outcome::Unknown(format!("{e}")), String::new()),
        }
    }
}

/// The start of a refusal's answer: its kind, or its first characters.
fn refusal(outcome: &Outcome, body: &str) -> String {
    match outcome {
        Outcome::Failed(status) => {
            let kind = json(body)["kind"].as_str().map(str::to_owned);
            format!(
                "{status} {}",
                kind.unwrap_or_else(|| body.chars().take(60).collect())
            )
        }
        _ => String::new(),
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

/// Waits until operations may start, and counts this one in flight; false when stopping.
async fn enter(shared: &Shared) -> bool {
    loop {
        if shared.stop.load(SeqCst) {
            return false;
        }
        shared.in_flight.fetch_add(1, SeqCst);
        if shared.up.load(SeqCst) {
            return true;
        }
        shared.in_flight.fetch_sub(1, SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A buyer: purchases, checkouts (and their payment), bids, buy-nows, retirements, top-ups (and
/// their payment) and withdrawals, chosen at random.
async fn buyer(shared: Arc<Shared>, index: usize, mut c: Client, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Payments to complete on the gateway: (payment id, what it pays).
    let mut to_pay: Vec<String> = Vec::new();
    while enter(&shared).await {
        c.refresh(&shared);
        let id = shared.id();
        let key = format!("crash-{id:08}");
        let started = Instant::now();
        let mut op = Op {
            client: index,
            kind: Kind::Buy,
            user: c.user.clone(),
            key: key.clone(),
            target: String::new(),
            quantity_kg: 0,
            outcome: Outcome::Failed(0),
            answer: String::new(),
            refusal: String::new(),
            started,
            ended: started,
        };
        let base = shared.base.as_str();
        let roll = rng.gen_range(0..100);
        if let Some(payment) = to_pay.pop() {
            op.kind = Kind::Pay;
            op.key = payment.clone();
            let (outcome, body) = c
                .post(
                    base,
                    &format!("/sandbox/pay/{payment}"),
                    &[("choice", "succeed")],
                )
                .await;
            op.refusal = refusal(&outcome, &body);
            op.outcome = outcome;
        } else if roll < 40 || roll >= 94 {
            // A kilogram from a listing, paid from the wallet; now and then retired at once.
            let listing = pick(&mut rng, &shared.listings);
            let retire = rng.gen_bool(0.1);
            op.kind = Kind::Buy;
            op.target = listing.clone();
            op.quantity_kg = 1;
            let mut form = vec![
                ("listing", listing.as_str()),
                ("quantity", "0.001"),
                ("expected_price", "400000.00"),
                ("idempotency_key", key.as_str()),
            ];
            if retire {
                form.extend([
                    ("retire", "on"),
                    ("beneficiary", "Crash Co"),
                    ("reason", "crash test"),
                ]);
            }
            let (outcome, body) = c.post(base, "/api/market/buy", &form).await;
            op.answer = json(&body)["order"].as_str().unwrap_or_default().to_owned();
            op.refusal = refusal(&outcome, &body);
            op.outcome = outcome;
        } else if roll < 48 {
            // Half a tonne through the gateway when the wallet does not cover it.
            let listing = pick(&mut rng, &shared.listings);
            op.kind = Kind::Checkout;
            op.target = listing.clone();
            op.quantity_kg = 500;
            let (outcome, body) = c
                .post(
                    base,
                    "/api/market/buy",
                    &[
                        ("listing", listing.as_str()),
                        ("quantity", "0.5"),
                        ("expected_price", "400000.00"),
                        ("idempotency_key", key.as_str()),
                        ("pay_with", "gateway"),
                    ],
                )
                .await;
            let answer = json(&body);
            op.answer = answer["order"].as_str().unwrap_or_default().to_owned();
            if outcome == Outcome::Ok {
                if let Some(p) = answer["next"]
                    .as_str()
                    .and_then(|n| n.strip_prefix("/sandbox/pay/"))
                {
                    to_pay.push(p.to_owned());
                }
            }
            op.refusal = refusal(&outcome, &body);
            op.outcome = outcome;
        } else if roll < 66 {
            let Some((auction, max)) = next_bid(&mut rng, &shared) else {
                shared.in_flight.fetch_sub(1, SeqCst);
                continue;
            };
            op.kind = Kind::Bid;
            op.target = auction.clone();
            let max = max.to_string();
            let (outcome, body) = c
                .post(
                    base,
                    "/api/auctions/bid",
                    &[
                        ("auction", auction.as_str()),
                        ("max", max.as_str()),
                        ("idempotency_key", key.as_str()),
                    ],
                )
                .await;
            op.answer = json(&body)["version"]
                .as_i64()
                .map(|v| v.to_string())
                .unwrap_or_default();
            forget_closed(&shared, &auction, &outcome, &body);
            op.refusal = refusal(&outcome, &body);
            op.outcome = outcome;
        } else if roll < 69 {
            let Some((auction, _)) = next_bid(&mut rng, &shared) else {
                shared.in_flight.fetch_sub(1, SeqCst);
                continue;
            };
            op.kind = Kind::BuyNow;
            op.target = auction.clone();
            let (outcome, body) = c
                .post(
                    base,
                    "/api/auctions/buy-now",
                    &[
                        ("auction", auction.as_str()),
                        ("expected_price", "300000.00"),
                        ("idempotency_key", key.as_str()),
                    ],
                )
                .await;
            if outcome == Outcome::Ok {
                shared
                    .auctions
                    .lock()
                    .unwrap()
                    .retain(|(n, _)| *n != auction);
            }
            forget_closed(&shared, &auction, &outcome, &body);
            op.refusal = refusal(&outcome, &body);
            op.outcome = outcome;
        } else if roll < 79 {
            op.kind = Kind::Retire;
            op.quantity_kg = 1;
            let (outcome, body) = c
                .post(
                    base,
                    "/api/wallet/retire",
                    &[
                        ("quantity_kg", "1"),
                        ("beneficiary", "Crash Co"),
                        ("reason", "crash test"),
                        ("idempotency_key", key.as_str()),
                    ],
                )
                .await;
            op.answer = json(&body)["number"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            op.refusal = refusal(&outcome, &body);
            op.outcome = outcome;
        } else if roll < 89 {
            // A unique amount tells this top-up's payment apart.
            op.kind = Kind::TopUp;
            let amount = (100_000 + id).to_string();
            op.key = amount.clone();
            let (outcome, body) = c
                .post(base, "/api/money/top-up", &[("amount", amount.as_str())])
                .await;
            let answer = json(&body);
            op.answer = answer["payment"].as_str().unwrap_or_default().to_owned();
            if outcome == Outcome::Ok {
                if let Some(p) = answer["pay_url"]
                    .as_str()
                    .and_then(|n| n.strip_prefix("/sandbox/pay/"))
                {
                    to_pay.push(p.to_owned());
                }
            }
            op.refusal = refusal(&outcome, &body);
            op.outcome = outcome;
        } else {
            op.kind = Kind::Withdraw;
            op.quantity_kg = 0;
            op.target = "50000".into();
            let (outcome, body) = c
                .post(
                    base,
                    "/api/money/withdraw",
                    &[
                        ("amount", "50000"),
                        ("bank_name", "Crash Bank"),
                        ("account_holder", "Crash Buyer"),
                        ("account_number", "12345678"),
                        ("idempotency_key", key.as_str()),
                    ],
                )
                .await;
            op.answer = json(&body).as_str().unwrap_or_default().to_owned();
            op.refusal = refusal(&outcome, &body);
            op.outcome = outcome;
        }
        op.ended = Instant::now();
        let busy = matches!(op.outcome, Outcome::Failed(0 | 503));
        shared.record(op);
        shared.in_flight.fetch_sub(1, SeqCst);
        // As a person (or a script honouring Retry-After) would: not again at once.
        if busy {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn pick(rng: &mut StdRng, from: &Mutex<Vec<String>>) -> String {
    let list = from.lock().unwrap();
    list[rng.gen_range(0..list.len())].clone()
}

/// An open auction and a maximum a little above the last one sent on it.
fn next_bid(rng: &mut StdRng, shared: &Shared) -> Option<(String, i64)> {
    let mut auctions = shared.auctions.lock().unwrap();
    if auctions.is_empty() {
        return None;
    }
    let i = rng.gen_range(0..auctions.len());
    auctions[i].1 += 1_000 * rng.gen_range(1..=4);
    Some(auctions[i].clone())
}

/// An auction that answered it has ended is bid on no more.
fn forget_closed(shared: &Shared, auction: &str, outcome: &Outcome, body: &str) {
    if matches!(outcome, Outcome::Failed(409)) && !body.contains("busy") {
        shared
            .auctions
            .lock()
            .unwrap()
            .retain(|(n, _)| n != auction);
    }
}

/// The seller: new auctions of 1 kg (while fewer than `OPEN_AUCTIONS` are open) and new
/// fixed-price listings of 10 kg, each told apart by its description.
async fn seller(
    shared: Arc<Shared>,
    index: usize,
    mut auctioneer: Client,
    mut lister: Client,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(150..450))).await;
        if !enter(&shared).await {
            return;
        }
        auctioneer.refresh(&shared);
        lister.refresh(&shared);
        let id = shared.id();
        let description = format!("crash lot {id:08}");
        let started = Instant::now();
        let auction = shared.auctions.lock().unwrap().len() < OPEN_AUCTIONS && rng.gen_bool(0.7);
        let base = shared.base.as_str();
        let (kind, user, (outcome, body)) = if auction {
            let minutes = rng.gen_range(2..=30).to_string();
            (
                Kind::Auction,
                auctioneer.user.clone(),
                auctioneer
                    .post(
                        base,
                        "/api/auctions/create",
                        &[
                            ("class", "TH:2026"),
                            ("quantity", "0.001"),
                            ("starting_price", "100000"),
                            ("increment", "1000"),
                            ("buy_now", "300000"),
                            ("duration_minutes", minutes.as_str()),
                            ("description", description.as_str()),
                        ],
                    )
                    .await,
            )
        } else {
            (
                Kind::List,
                lister.user.clone(),
                lister
                    .post(
                        base,
                        "/api/listings/create",
                        &[
                            ("class", "VN:2026"),
                            ("quantity", "0.01"),
                            ("price", "200000"),
                            ("description", description.as_str()),
                            ("expires_on", ""),
                            ("confirm_price", "true"),
                        ],
                    )
                    .await,
            )
        };
        let number = json(&body).as_str().unwrap_or_default().to_owned();
        if outcome == Outcome::Ok && !number.is_empty() {
            if kind == Kind::Auction {
                shared
                    .auctions
                    .lock()
                    .unwrap()
                    .push((number.clone(), 100_000));
            } else {
                shared.listings.lock().unwrap().push(number.clone());
            }
        }
        let refused = refusal(&outcome, &body);
        shared.record(Op {
            client: index,
            kind,
            user,
            key: description,
            target: String::new(),
            quantity_kg: if kind == Kind::Auction { 1 } else { 10 },
            outcome,
            refusal: refused,
            answer: number,
            started,
            ended: Instant::now(),
        });
        shared.in_flight.fetch_sub(1, SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// The server and its PostgreSQL.

struct Proc {
    child: tokio::process::Child,
}

impl Proc {
    async fn start(dir: &Path, port: u16, log: &Path) -> anyhow::Result<(Proc, Duration)> {
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = tokio::process::Command::new(harness::server_binary())
            .env_remove("DATABASE_URL")
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("EVCX_DATA_DIR", dir)
            .env("EVCX_SEED_DEMO", "false")
            .env("EVCX_SANDBOX_PAYMENTS", "true")
            .env("EVCX_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the server")?;
        let mut server = Proc { child };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{port}/health"))
                .send()
                .await
            {
                if r.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("the server exited while starting ({status}); see its log");
            }
            if Instant::now() > deadline {
                bail!("the server did not answer /health within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok((server, started.elapsed()))
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM; answers how long it took to exit (SIGKILL after `limit`, then `None`).
    async fn terminate(&mut self, limit: Duration) -> anyhow::Result<Option<Duration>> {
        let t = Instant::now();
        if let Some(pid) = self.pid() {
            signal("TERM", pid).await?;
        }
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => {
                status?;
                Ok(Some(t.elapsed()))
            }
            Err(_) => {
                self.kill9().await?;
                Ok(None)
            }
        }
    }
}

async fn signal(name: &str, pid: u32) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .await?;
    ensure!(status.success(), "kill -{name} {pid} failed");
    Ok(())
}

/// The embedded PostgreSQL's postmaster pid and port, from its `postmaster.pid`.
fn postmaster(dir: &Path) -> Option<(u32, u16)> {
    let text = std::fs::read_to_string(dir.join("pg/postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    Some((
        lines.first()?.trim().parse().ok()?,
        lines.get(3)?.trim().parse().ok()?,
    ))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn db_url(dir: &Path) -> anyhow::Result<String> {
    let (_, port) = postmaster(dir).context("no postmaster.pid")?;
    let password = std::fs::read_to_string(dir.join("pg-password"))?;
    Ok(format!(
        "postgres://evcx:{}@127.0.0.1:{port}/evcx",
        password.trim()
    ))
}

/// Runs SQL (from standard input, so it may be long) and answers its rows, fields split at `|`.
async fn rows(url: &str, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(harness::psql()?)
        .args([
            url,
            "-X",
            "-q",
            "-At",
            "-F",
            "|",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("psql stdin")?;
    stdin.write_all(sql.as_bytes()).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    ensure!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect())
}

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// ---------------------------------------------------------------------------------------------
// Checking the history.

#[derive(Default)]
struct Tally {
    lost: u64,
    half_done: u64,
    unknown_done: u64,
    unknown_absent: u64,
    violations: u64,
    /// The first few problems, for the log.
    problems: Vec<String>,
}

impl Tally {
    fn problem(&mut self, what: String) {
        if self.problems.len() < 40 {
            self.problems.push(what);
        }
    }
}

/// How one operation's effect stands in the database.
enum Found {
    Absent,
    /// Present and complete; the number (or version) it has.
    Complete(String),
    /// Present but not whole, or present twice.
    Partial(String),
}

fn judge(t: &mut Tally, op: &Op, found: Found) {
    let who = format!(
        "{} {} by client {} ({})",
        op.kind.name(),
        op.key,
        op.client,
        op.target
    );
    match (&op.outcome, found) {
        (Outcome::Ok, Found::Complete(n)) => {
            if !op.answer.is_empty() && !n.is_empty() && n != op.answer {
                t.lost += 1;
                t.problem(format!(
                    "LOST: {who} answered {} but the database has {n}",
                    op.answer
                ));
            }
        }
        (Outcome::Ok, Found::Absent) => {
            t.lost += 1;
            t.problem(format!(
                "LOST: {who} was acknowledged ({}) but is not there",
                op.answer
            ));
        }
        (Outcome::Ok, Found::Partial(why)) => {
            t.lost += 1;
            t.problem(format!(
                "LOST: {who} was acknowledged but is incomplete: {why}"
            ));
        }
        (Outcome::Failed(_), Found::Absent) => {}
        (Outcome::Failed(status), Found::Complete(n)) => {
            t.half_done += 1;
            t.problem(format!(
                "HALF-DONE: {who} was refused ({status}) but {n} is there"
            ));
        }
        (Outcome::Failed(status), Found::Partial(why)) => {
            t.half_done += 1;
            t.problem(format!(
                "HALF-DONE: {who} was refused ({status}) but left: {why}"
            ));
        }
        (Outcome::Unknown(_), Found::Absent) => t.unknown_absent += 1,
        (Outcome::Unknown(_), Found::Complete(_)) => t.unknown_done += 1,
        (Outcome::Unknown(e), Found::Partial(why)) => {
            t.half_done += 1;
            t.problem(format!(
                "HALF-DONE: {who} (answer lost: {e}) is incomplete: {why}"
            ));
        }
    }
}

/// `VALUES (i, 'a', 'b', …), …` of the operations of one kind.
fn values(ops: &[(usize, &Op)], fields: impl Fn(&Op) -> Vec<String>) -> String {
    let mut s = String::from("VALUES ");
    for (n, (i, op)) in ops.iter().enumerate() {
        if n > 0 {
            s.push_str(", ");
        }
        write!(s, "({i}").ok();
        for f in fields(op) {
            write!(s, ", {}", lit(&f)).ok();
        }
        s.push(')');
    }
    s
}

/// Checks each operation of `ops` and the database's invariants.
async fn check(url: &str, ops: &[Op], t: &mut Tally) -> anyhow::Result<()> {
    let mut by_kind: HashMap<Kind, Vec<(usize, &Op)>> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        by_kind.entry(op.kind).or_default().push((i, op));
    }
    let mut found: HashMap<usize, Found> = HashMap::new();
    for (kind, list) in &by_kind {
        for chunk in list.chunks(2_000) {
            check_kind(url, *kind, chunk, &mut found).await?;
        }
    }
    for (i, op) in ops.iter().enumerate() {
        judge(t, op, found.remove(&i).unwrap_or(Found::Absent));
    }
    invariants(url, t).await
}

async fn check_kind(
    url: &str,
    kind: Kind,
    ops: &[(usize, &Op)],
    found: &mut HashMap<usize, Found>,
) -> anyhow::Result<()> {
    let entries = |transfer: &str| {
        format!("({transfer} IS NOT NULL AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transfer_id = {transfer}))")
    };
    let sql = match kind {
        Kind::Buy | Kind::Checkout => format!(
            "SELECT v.i, o.number, o.status, l.number, o.quantity_kg, {}, coalesce(p.status, ''),
                    coalesce(h.status, ''), o.retire_beneficiary IS NOT NULL, o.retirement_id IS NOT NULL
             FROM ({}) v(i, buyer, key, listing)
             JOIN orders o ON o.buyer_id = v.buyer::uuid AND o.idempotency_key = v.key
             JOIN listings l ON l.id = o.listing_id
             LEFT JOIN payments p ON p.id = o.payment_id
             LEFT JOIN ledger_holds h ON h.id = o.money_hold_id",
            entries("o.transfer_id"),
            values(ops, |op| vec![op.user.clone(), op.key.clone(), op.target.clone()])
        ),
        Kind::Pay => format!(
            "SELECT v.i, p.number, p.status, {}, p.purpose, coalesce(o.status, '')
             FROM ({}) v(i, payment) JOIN payments p ON p.id = v.payment::uuid
             LEFT JOIN orders o ON o.payment_id = p.id",
            entries("p.transfer_id"),
            values(ops, |op| vec![op.key.clone()])
        ),
        Kind::Bid | Kind::BuyNow => format!(
            "SELECT v.i, count(*), max(b.version), bool_and(b.version <= a.version), bool_and(b.kind = v.kind),
                    bool_or(a.bought_now), coalesce(max(a.leader_id::text), ''), coalesce(max(a.outcome), ''),
                    coalesce(max(o.buyer_id::text), ''), coalesce(max(o.status), ''), max(v.bidder)
             FROM ({}) v(i, bidder, key, auction, kind)
             JOIN listings l ON l.number = v.auction JOIN auctions a ON a.listing_id = l.id
             JOIN bids b ON b.auction_id = a.listing_id AND b.bidder_id = v.bidder::uuid AND b.idempotency_key = v.key
             LEFT JOIN orders o ON o.id = a.order_id
             GROUP BY v.i",
            values(ops, |op| vec![
                op.user.clone(),
                op.key.clone(),
                op.target.clone(),
                if op.kind == Kind::Bid { "bid".into() } else { "buy_now".into() },
            ])
        ),
        Kind::Retire => format!(
            "SELECT v.i, r.number, r.quantity_kg, {},
                    coalesce((SELECT sum(upper(s.serials) - lower(s.serials)) FROM serial_blocks s
                              JOIN ledger_accounts a ON a.id = s.account_id AND a.kind = 'retired'
                              WHERE s.retirement_id = r.id), 0)
             FROM ({}) v(i, owner, key) JOIN retirements r ON r.owner_id = v.owner::uuid AND r.idempotency_key = v.key",
            entries("r.transfer_id"),
            values(ops, |op| vec![op.user.clone(), op.key.clone()])
        ),
        Kind::TopUp => format!(
            "SELECT v.i, count(*), max(p.number)
             FROM ({}) v(i, payer, amount)
             JOIN payments p ON p.user_id = v.payer::uuid AND p.purpose = 'top_up' AND p.amount = v.amount::numeric
             GROUP BY v.i",
            values(ops, |op| vec![op.user.clone(), op.key.clone()])
        ),
        Kind::Withdraw => format!(
            "SELECT v.i, w.number, w.status, coalesce(h.status, ''), coalesce(h.amount = w.amount + w.fee, false),
                    w.amount = v.amount::numeric
             FROM ({}) v(i, owner, key, amount) JOIN withdrawals w ON w.user_id = v.owner::uuid AND w.idempotency_key = v.key
             LEFT JOIN ledger_holds h ON h.id = w.hold_id",
            values(ops, |op| vec![op.user.clone(), op.key.clone(), op.target.clone()])
        ),
        Kind::Auction | Kind::List => format!(
            "SELECT v.i, count(*), max(l.number), bool_and(l.kind = v.kind AND l.listed_kg = v.kg::bigint),
                    bool_and(h.id IS NOT NULL AND h.amount = l.listed_kg),
                    bool_and((l.kind = 'auction') = (a.listing_id IS NOT NULL))
             FROM ({}) v(i, seller, description, kind, kg)
             JOIN listings l ON l.seller_id = v.seller::uuid AND l.description = v.description
             LEFT JOIN ledger_holds h ON h.id = l.hold_id
             LEFT JOIN auctions a ON a.listing_id = l.id
             GROUP BY v.i",
            values(ops, |op| vec![
                op.user.clone(),
                op.key.clone(),
                if op.kind == Kind::Auction { "auction".into() } else { "fixed".into() },
                op.quantity_kg.to_string(),
            ])
        ),
    };
    let kinds: HashMap<usize, &Op> = ops.iter().copied().collect();
    for r in rows(url, &sql).await? {
        let i: usize = r[0].parse()?;
        let op = kinds[&i];
        let t = |n: usize| r.get(n).is_some_and(|v| v == "t");
        let verdict = match kind {
            Kind::Buy | Kind::Checkout => {
                let (number, status, listing, kg, paid) = (&r[1], &r[2], &r[3], &r[4], t(5));
                let (payment, hold) = (&r[6], &r[7]);
                let mut wrong = Vec::new();
                if *listing != op.target || kg.parse::<i64>().ok() != Some(op.quantity_kg) {
                    wrong.push(format!("{kg} kg of {listing}"));
                }
                match status.as_str() {
                    "completed" => {
                        if !paid {
                            wrong.push("completed without its ledger transfer".into());
                        }
                        if !payment.is_empty() && payment != "succeeded" {
                            wrong.push(format!("completed with its payment {payment}"));
                        }
                        if t(8) != t(9) {
                            wrong.push("to be retired but no retirement".into());
                        }
                    }
                    "pending" if op.kind == Kind::Checkout => {
                        if payment != "pending" {
                            wrong.push(format!("pending with payment {payment:?}"));
                        }
                        if !hold.is_empty() && hold != "pending" {
                            wrong.push(format!("pending with its money hold {hold}"));
                        }
                    }
                    "cancelled" if op.kind == Kind::Checkout => {
                        if !matches!(payment.as_str(), "failed" | "expired") {
                            wrong.push(format!("cancelled with payment {payment:?}"));
                        }
                        if hold == "pending" {
                            wrong.push("cancelled with its money still held".into());
                        }
                    }
                    other => wrong.push(format!("status {other}")),
                }
                if wrong.is_empty() {
                    Found::Complete(number.clone())
                } else {
                    Found::Partial(format!("order {number}: {}", wrong.join(", ")))
                }
            }
            Kind::Pay => {
                let (number, status, transfer, purpose, order) = (&r[1], &r[2], t(3), &r[4], &r[5]);
                match status.as_str() {
                    "succeeded" if transfer && (purpose != "checkout" || order == "completed") => {
                        Found::Complete(String::new())
                    }
                    "succeeded" => Found::Partial(format!(
                        "payment {number} succeeded, transfer {transfer}, order {order:?}"
                    )),
                    // Not paid: absent as a payment of this operation.
                    _ => Found::Absent,
                }
            }
            Kind::Bid | Kind::BuyNow => {
                let count: i64 = r[1].parse()?;
                let (version, versions_ok, kind_ok) = (&r[2], t(3), t(4));
                let (bought_now, leader, outcome, order_buyer, order_status, bidder) =
                    (t(5), &r[6], &r[7], &r[8], &r[9], &r[10]);
                let mut wrong = Vec::new();
                if count != 1 {
                    wrong.push(format!("{count} bids with its key"));
                }
                if !versions_ok {
                    wrong.push("a bid beyond the auction's version".into());
                }
                if !kind_ok {
                    wrong.push("a bid of another kind".into());
                }
                if kind == Kind::BuyNow {
                    let settled = match outcome.as_str() {
                        "" => bought_now && leader == bidder,
                        "sold" => order_buyer == bidder && order_status == "completed",
                        _ => false,
                    };
                    if !settled {
                        wrong.push(format!(
                            "bought now {bought_now}, leader {leader}, outcome {outcome:?}, order {order_buyer} {order_status}"
                        ));
                    }
                }
                if wrong.is_empty() {
                    Found::Complete(if kind == Kind::Bid {
                        version.clone()
                    } else {
                        String::new()
                    })
                } else {
                    Found::Partial(wrong.join(", "))
                }
            }
            Kind::Retire => {
                let (number, kg, transfer, serials) = (&r[1], &r[2], t(3), &r[4]);
                let want = op.quantity_kg.to_string();
                if *kg == want && transfer && *serials == want {
                    Found::Complete(number.clone())
                } else {
                    Found::Partial(format!(
                        "{number}: {kg} kg, transfer {transfer}, {serials} kg of serials retired"
                    ))
                }
            }
            Kind::TopUp => {
                let count: i64 = r[1].parse()?;
                if count == 1 {
                    Found::Complete(r[2].clone())
                } else {
                    Found::Partial(format!("{count} payments"))
                }
            }
            Kind::Withdraw => {
                let (number, status, hold, hold_ok, amount_ok) = (&r[1], &r[2], &r[3], t(4), t(5));
                if status == "pending" && hold == "pending" && hold_ok && amount_ok {
                    Found::Complete(number.clone())
                } else {
                    Found::Partial(format!(
                        "{number}: {status}, hold {hold:?} (amount and fee: {hold_ok}), amount {amount_ok}"
                    ))
                }
            }
            Kind::Auction | Kind::List => {
                let count: i64 = r[1].parse()?;
                if count == 1 && t(3) && t(4) && t(5) {
                    Found::Complete(r[2].clone())
                } else {
                    Found::Partial(format!(
                        "{count} listings ({}), kind and kg {}, hold {}, auction row {}",
                        r[2],
                        t(3),
                        t(4),
                        t(5)
                    ))
                }
            }
        };
        found.insert(i, verdict);
    }
    Ok(())
}

/// The database's invariants, as `ledger::reconcile` checks them and more; each line is the
/// number of rows breaking one.
const INVARIANTS: &str = "
SELECT 'assets whose entries do not sum to 0', count(*) FROM (SELECT asset FROM ledger_entries GROUP BY asset HAVING sum(amount) <> 0) s
UNION ALL SELECT 'transfers that do not balance', count(*) FROM (SELECT transfer_id FROM ledger_entries GROUP BY transfer_id, asset HAVING sum(amount) <> 0) s
UNION ALL SELECT 'accounts whose balance is not the sum of their entries', count(*) FROM ledger_accounts a
    LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) e ON e.account_id = a.id
    WHERE a.balance <> coalesce(e.total, 0)
UNION ALL SELECT 'user accounts below 0', count(*) FROM ledger_accounts WHERE owner_id IS NOT NULL AND balance < 0
UNION ALL SELECT 'held accounts unlike their pending holds', count(*) FROM ledger_accounts a
    LEFT JOIN (SELECT held_id, sum(remaining) AS total FROM ledger_holds WHERE status = 'pending' GROUP BY held_id) h ON h.held_id = a.id
    WHERE a.kind = 'held' AND a.balance <> coalesce(h.total, 0)
UNION ALL SELECT 'credit accounts unlike their serials', count(*) FROM ledger_accounts a
    LEFT JOIN (SELECT account_id, sum(upper(serials) - lower(serials)) AS kg FROM serial_blocks GROUP BY account_id) b ON b.account_id = a.id
    WHERE a.asset = 'credit' AND a.kind <> 'issuance_source' AND a.balance <> coalesce(b.kg, 0)
UNION ALL SELECT 'issuance source unlike the issuances', count(*)
    FROM (SELECT (SELECT balance FROM ledger_accounts WHERE owner_id IS NULL AND asset = 'credit' AND kind = 'issuance_source')
                 + coalesce((SELECT sum(gross_kg) FROM credit_issuances), 0) AS d) s WHERE d <> 0
UNION ALL SELECT 'listings whose sold or pending kg are not their orders', count(*) FROM listings l
    LEFT JOIN (SELECT listing_id, sum(quantity_kg) FILTER (WHERE status IN ('completed', 'refunded')) AS sold,
                      sum(quantity_kg) FILTER (WHERE status = 'pending') AS pending
               FROM orders GROUP BY listing_id) o ON o.listing_id = l.id
    WHERE l.sold_kg <> coalesce(o.sold, 0) OR l.pending_kg <> coalesce(o.pending, 0)
UNION ALL SELECT 'completed orders without ledger entries', count(*) FROM orders o
    WHERE o.status IN ('completed', 'refunded') AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transfer_id = o.transfer_id)
UNION ALL SELECT 'pending orders whose payment is not pending', count(*) FROM orders o LEFT JOIN payments p ON p.id = o.payment_id
    WHERE o.status = 'pending' AND (p.id IS NULL OR p.status <> 'pending')
UNION ALL SELECT 'retirements without all their serials', count(*) FROM retirements r
    WHERE r.quantity_kg <> coalesce((SELECT sum(upper(s.serials) - lower(s.serials)) FROM serial_blocks s WHERE s.retirement_id = r.id), 0)
UNION ALL SELECT 'succeeded payments without ledger entries', count(*) FROM payments p
    WHERE p.status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transfer_id = p.transfer_id)
UNION ALL SELECT 'pending withdrawals whose money is not held', count(*) FROM withdrawals w JOIN ledger_holds h ON h.id = w.hold_id
    WHERE w.status = 'pending' AND (h.status <> 'pending' OR h.remaining <> w.amount + w.fee)
UNION ALL SELECT 'auctions behind their bids', count(*) FROM auctions a
    WHERE a.version < coalesce((SELECT max(version) FROM bids b WHERE b.auction_id = a.listing_id), 0)
UNION ALL SELECT 'open auctions whose leader holds nothing', count(*) FROM auctions a LEFT JOIN ledger_holds h ON h.id = a.leader_hold_id
    WHERE a.closed_at IS NULL AND a.leader_id IS NOT NULL AND (h.id IS NULL OR h.status <> 'pending')
";

async fn invariants(url: &str, t: &mut Tally) -> anyhow::Result<()> {
    for r in rows(url, INVARIANTS).await? {
        let n: u64 = r[1].parse()?;
        if n > 0 {
            t.violations += n;
            t.problem(format!("VIOLATION: {}: {n}", r[0]));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Victim {
    Server,
    Postgres,
    Both,
}

pub async fn crash(cycles: usize, clients: usize, seed: Option<u64>) -> anyhow::Result<bool> {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    println!("crash: {cycles} cycles, {clients} buyers and a seller, seed {seed} (--seed {seed} repeats the kills)");
    let mut rng = StdRng::seed_from_u64(seed);
    let root = harness::work_dir().join("crash");
    let dir = root.join("server-data");
    leftover_postgres(&dir).await;
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::create_dir_all(&dir)?;
    let log = root.join("server.log");
    let outcome = run(cycles, clients, seed, &mut rng, &dir, &log).await;
    // Whatever happened, no PostgreSQL of ours stays behind.
    leftover_postgres(&dir).await;
    if let Err(e) = &outcome {
        println!("(the server's log: {})", log.display());
        return Err(anyhow::anyhow!("{e:#}"));
    }
    outcome
}

/// Stops a PostgreSQL left running in `dir` by an earlier, interrupted run.
async fn leftover_postgres(dir: &Path) {
    if let Some((pid, _)) = postmaster(dir) {
        if alive(pid) {
            signal("QUIT", pid).await.ok();
            for _ in 0..100 {
                if !alive(pid) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if alive(pid) {
                signal("KILL", pid).await.ok();
            }
        }
    }
}

async fn seed_market(dir: &Path, buyers: usize) -> anyhow::Result<()> {
    let out = dir.join("market.json");
    let status = tokio::process::Command::new(harness::server_binary())
        .arg("seed-market")
        .args([
            "--sellers",
            "2",
            "--listings",
            "30",
            "--listing-kg",
            "200000",
        ])
        .args(["--buyers", &buyers.to_string()])
        .args(["--money", MONEY, "--password", PASSWORD, "--out"])
        .arg(&out)
        .env_remove("DATABASE_URL")
        .env("EVCX_DATA_DIR", dir)
        .env("EVCX_LOG", "warn")
        .status()
        .await
        .context("running server seed-market")?;
    ensure!(status.success(), "server seed-market failed ({status})");
    Ok(())
}

async fn run(
    cycles: usize,
    clients: usize,
    seed: u64,
    rng: &mut StdRng,
    dir: &Path,
    log: &Path,
) -> anyhow::Result<bool> {
    let began = Instant::now();
    println!("seeding 2 sellers with 30 listings of 200 t and {clients} buyers…");
    seed_market(dir, clients).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let (mut server, _) = Proc::start(dir, port, log).await?;
    let url = db_url(dir)?;
    // Withdrawals need a checked identity.
    rows(
        &url,
        "UPDATE users SET kyc_verified_at = now() WHERE email LIKE 'bench-buyer-%'",
    )
    .await?;
    let users: HashMap<String, String> = rows(&url, "SELECT email, id FROM users")
        .await?
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let numbers = |seller: usize| {
        format!(
            "SELECT l.number FROM listings l JOIN users u ON u.id = l.seller_id
             WHERE u.email = 'bench-seller-{seller}@bench.evcx' ORDER BY l.number"
        )
    };
    let th: Vec<String> = rows(&url, &numbers(0))
        .await?
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    let vn: Vec<String> = rows(&url, &numbers(1))
        .await?
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    ensure!(
        th.len() >= 3 && vn.len() >= 2,
        "seed-market made too few listings"
    );
    let shared = Arc::new(Shared {
        base: format!("http://127.0.0.1:{port}"),
        up: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        generation: AtomicU64::new(0),
        next_id: AtomicU64::new(0),
        history: Mutex::new(Vec::new()),
        listings: Mutex::new(th[2..].iter().chain(&vn[1..]).cloned().collect()),
        auctions: Mutex::new(Vec::new()),
        users,
    });
    // The sellers free credits to auction (TH) and to list again (VN).
    let auctioneer = Client::login(&shared, "bench-seller-0@bench.evcx").await?;
    let lister = Client::login(&shared, "bench-seller-1@bench.evcx").await?;
    for (c, listing) in [
        (&auctioneer, &th[0]),
        (&auctioneer, &th[1]),
        (&lister, &vn[0]),
    ] {
        let (outcome, body) = c
            .post(
                &shared.base,
                "/api/listings/cancel",
                &[("listing", listing)],
            )
            .await;
        ensure!(
            outcome == Outcome::Ok,
            "cancelling {listing}: {outcome:?} {body}"
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for b in 0..clients {
        let c = Client::login(&shared, &format!("bench-buyer-{b}@bench.evcx")).await?;
        tasks.spawn(buyer(shared.clone(), b, c, seed ^ (b as u64 + 1)));
    }
    tasks.spawn(seller(
        shared.clone(),
        clients,
        auctioneer,
        lister,
        seed ^ 0xabcdef,
    ));
    shared.up.store(true, SeqCst);

    let mut tally = Tally::default();
    let mut checked = 0usize;
    let (mut by_server, mut by_postgres, mut by_both) = (0u64, 0u64, 0u64);
    let mut restarts: Vec<f64> = Vec::new();
    let mut slow_exits = 0u64;
    let mut exit_after_pg: Vec<f64> = Vec::new();
    for cycle in 1..=cycles {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1_500..5_000))).await;
        let victim = match rng.gen_range(0..3) {
            0 => Victim::Server,
            1 => Victim::Postgres,
            _ => Victim::Both,
        };
        let (pg_pid, _) = postmaster(dir).context("no postmaster.pid")?;
        match victim {
            Victim::Server => {
                by_server += 1;
                server.kill9().await?;
            }
            Victim::Both => {
                by_both += 1;
                signal("KILL", pg_pid).await?;
                server.kill9().await?;
            }
            Victim::Postgres => {
                by_postgres += 1;
                signal("KILL", pg_pid).await?;
                // The server goes on without its database for a moment (its answers are
                // failures), then is stopped as an operator would.
                tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1_500))).await;
                let took = server.terminate(Duration::from_secs(30)).await?;
                exit_after_pg.push(took.map_or(30.0, |d| d.as_secs_f64()));
                if took.is_none_or(|d| d > EXIT_LIMIT) {
                    slow_exits += 1;
                    tally.problem(format!(
                        "cycle {cycle}: the server took {} to exit after SIGTERM without PostgreSQL",
                        took.map_or("over 30 s (killed)".into(), |d| format!("{:.1} s", d.as_secs_f64()))
                    ));
                }
            }
        }
        shared.up.store(false, SeqCst);
        settle(&shared).await?;
        // Once a postmaster was killed, its backends end on their own; the next start clears
        // what is left. A server killed alone leaves PostgreSQL running for the next one.
        let (next, took) = Proc::start(dir, port, log)
            .await
            .with_context(|| format!("cycle {cycle}: restarting after killing {victim:?}"))?;
        server = next;
        restarts.push(took.as_secs_f64());
        shared.generation.fetch_add(1, SeqCst);
        let url = db_url(dir)?;
        let history = shared.history.lock().unwrap().clone();
        let before = (tally.lost, tally.half_done, tally.violations);
        check(&url, &history[checked..], &mut tally).await?;
        checked = history.len();
        let unknown = history
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Unknown(_)))
            .count();
        println!(
            "cycle {cycle:>3}: killed {victim:?}, restarted in {:.1} s; {} operations so far ({unknown} unknown); lost {}, half-done {}, violations {}",
            took.as_secs_f64(),
            history.len(),
            tally.lost,
            tally.half_done,
            tally.violations
        );
        if (tally.lost, tally.half_done, tally.violations) != before {
            for p in &tally.problems {
                println!("  {p}");
            }
            tally.problems.clear();
        }
        shared.up.store(true, SeqCst);
    }

    // SIGTERM under load: the requests in flight get their answers; the server exits in time.
    println!("SIGTERM under load…");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let at = Instant::now();
    let exit = server.terminate(Duration::from_secs(30)).await?;
    shared.up.store(false, SeqCst);
    settle(&shared).await?;
    let history = shared.history.lock().unwrap().clone();
    let in_flight: Vec<&Op> = history
        .iter()
        .filter(|o| o.started < at && o.ended > at)
        .collect();
    let answered = in_flight
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok | Outcome::Failed(1..=499)))
        .count();
    for o in in_flight
        .iter()
        .filter(|o| !matches!(o.outcome, Outcome::Ok | Outcome::Failed(1..=499)))
    {
        tally.problem(format!(
            "SIGTERM: {} {} in flight for {:.0} ms before the signal ended {:?}",
            o.kind.name(),
            o.key,
            (at - o.started).as_secs_f64() * 1000.0,
            o.outcome
        ));
    }
    let exit_s = exit.map_or(f64::INFINITY, |d| d.as_secs_f64());
    println!(
        "  {} requests in flight at SIGTERM, {answered} answered; the server exited in {exit_s:.1} s",
        in_flight.len()
    );

    // Once more from a clean start: everything recorded, checked again.
    println!("final check of all {} operations…", history.len());
    let (mut last, _) = Proc::start(dir, port, log).await?;
    let url = db_url(dir)?;
    let mut fin = Tally::default();
    check(&url, &history, &mut fin).await?;
    for p in tally.problems.iter().chain(&fin.problems) {
        println!("  {p}");
    }
    shared.stop.store(true, SeqCst);
    while tasks.join_next().await.is_some() {}
    last.terminate(Duration::from_secs(60)).await?;

    let count = |f: &dyn Fn(&Op) -> bool| history.iter().filter(|o| f(o)).count();
    let ok = count(&|o| o.outcome == Outcome::Ok);
    let failed = count(&|o| matches!(o.outcome, Outcome::Failed(_)));
    let unknown = count(&|o| matches!(o.outcome, Outcome::Unknown(_)));
    let mut per_kind = String::new();
    for kind in [
        Kind::Buy,
        Kind::Checkout,
        Kind::Pay,
        Kind::Bid,
        Kind::BuyNow,
        Kind::Retire,
        Kind::TopUp,
        Kind::Withdraw,
        Kind::Auction,
        Kind::List,
    ] {
        let n = count(&|o| o.kind == kind && o.outcome == Outcome::Ok);
        write!(
            per_kind,
            "{}{}:{n}",
            if per_kind.is_empty() { "" } else { "," },
            kind.name()
        )
        .ok();
    }
    let mut refusals: HashMap<(Kind, String), usize> = HashMap::new();
    for o in &history {
        if !o.refusal.is_empty() {
            *refusals.entry((o.kind, o.refusal.clone())).or_default() += 1;
        }
    }
    let mut refusals: Vec<_> = refusals.into_iter().collect();
    refusals.sort_by(|a, b| b.1.cmp(&a.1));
    println!("refusals (expected ones: sold out, not enough money or credits, outbid, ended):");
    for ((kind, why), n) in refusals.iter().take(15) {
        println!("  {n:>6} {} {why}", kind.name());
    }
    let lost = tally.lost.max(fin.lost);
    let half_done = tally.half_done.max(fin.half_done);
    let violations = tally.violations + fin.violations;
    restarts.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        restarts
            .get(((restarts.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let sigterm_ok = answered == in_flight.len() && exit.is_some_and(|d| d <= EXIT_LIMIT);
    bench_line(
        "crash",
        &[
            ("cycles", cycles.to_string()),
            ("operations", history.len().to_string()),
            ("ok", ok.to_string()),
            ("failed", failed.to_string()),
            ("unknown", unknown.to_string()),
            ("unknown_done", fin.unknown_done.to_string()),
            ("unknown_absent", fin.unknown_absent.to_string()),
            ("lost", lost.to_string()),
            ("half_done", half_done.to_string()),
            ("violations", violations.to_string()),
            (
                "kills",
                format!("server:{by_server},postgres:{by_postgres},both:{by_both}"),
            ),
            ("restart_p50_s", format!("{:.1}", quantile(0.5))),
            ("restart_max_s", format!("{:.1}", quantile(1.0))),
            ("slow_exits", slow_exits.to_string()),
            (
                "exit_without_pg_max_s",
                format!("{:.1}", exit_after_pg.iter().copied().fold(0.0, f64::max)),
            ),
            ("sigterm_in_flight", in_flight.len().to_string()),
            ("sigterm_answered", answered.to_string()),
            ("sigterm_exit_s", format!("{exit_s:.1}")),
            ("acknowledged", per_kind),
            ("seed", seed.to_string()),
            ("elapsed_s", format!("{:.0}", began.elapsed().as_secs_f64())),
        ],
    );
    Ok(lost == 0 && half_done == 0 && violations == 0 && slow_exits == 0 && sigterm_ok)
}

/// Waits for the operations in flight to end (their answers, or their connections, lost).
async fn settle(shared: &Shared) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while shared.in_flight.load(SeqCst) > 0 {
        if Instant::now() > deadline {
            bail!("operations still in flight after 90 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
