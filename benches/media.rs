//! Serving stored media (`GET /media/{id}`) against reading the same files with `cat`, and the
//! memory the server takes while many clients download one large video.
//!
//! A real Ledgerdesk (HTTP server, projections) starts in this process on a fresh database,
//! with local media storage in a temporary directory. An agent uploads `BENCH_FILES` files of
//! `BENCH_FILE_MB` MB (default 16 × 2 MB) and a 20 MB video through `POST /media` and sends
//! them in a reply, so each is served as a file of that reply. Then, in each of
//! `BENCH_ROUNDS` rounds (default 3):
//!
//! - **throughput**: 64 HTTP clients (`BENCH_CLIENTS`), each on its own keep-alive connection,
//!   download the files round-robin, `BENCH_PASSES` times each (default 4), counting the
//!   bytes as they stream in; the same bytes are then read from the storage directory with
//!   `cat` (the same files, the same number of times, read through a pipe by this process), and
//!   the ratio of the two rates is printed;
//! - **memory**: 50 clients (`BENCH_VIDEO_CLIENTS`) download the 20 MB video at once while a
//!   thread samples the process's resident memory every 5 ms; the peak growth over the
//!   resident memory before the downloads is printed, next to the 1,000 MB that holding one
//!   copy of the file per client would take.
//!
//! The clients run in this process too, so the memory figure includes theirs (they keep no
//! body: each chunk is counted and dropped).
//!
//! `cargo bench --bench media` (env: `DATABASE_URL` of a server where `BENCH_DATABASE`, default
//! `ledgerdesk_bench_media`, may be created and dropped).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{CustomerId, MessageId, TicketId};
use eventlog::Actor;
use eventlog::postgres::PostgresLog;
use futures::StreamExt;
use serde_json::{Value, json};
use testkit::env_or;
use testkit::{DatabaseName, TestApp};

const MB: u64 = 1024 * 1024;

/// Resident memory of this process, in bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let files: usize = env_or("BENCH_FILES", 16);
    let file_mb: u64 = env_or("BENCH_FILE_MB", 2);
    let clients: usize = env_or("BENCH_CLIENTS", 64);
    let passes: usize = env_or("BENCH_PASSES", 4);
    let video_clients: usize = env_or("BENCH_VIDEO_CLIENTS", 50);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let database = DatabaseName::named(&env_or(
        "BENCH_DATABASE",
        "ledgerdesk_bench_media".to_owned(),
    ));
    let dir = std::env::temp_dir().join(format!("ledgerdesk-bench-media-{}", std::process::id()));
    let media_config = media::MediaConfig {
        backend: media::Backend::Local { dir: dir.clone() },
        upload_limit: 64 * MB,
        ..media::MediaConfig::default()
    };
    let app = TestApp::spawn(database, |settings| {
        settings.api.media = Some(media_config);
        settings.db_max_connections = 20;
    })
    .await;
    let base = format!("http://{}", app.addr());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let token = sign_in(&app, &http, &base).await?;

    // The files, uploaded and sent in replies so that they are served as media of messages.
    let ticket = open_ticket(&app).await?;
    let mut uploads = Vec::new();
    for n in 0..files {
        let body: Vec<u8> = (0..file_mb * MB).map(|i| (i as u8) ^ (n as u8)).collect();
        uploads.push(
            upload(
                &http,
                &base,
                &token,
                &format!("file-{n}.bin"),
                "application/octet-stream",
                body,
            )
            .await?,
        );
    }
    let video = upload(
        &http,
        &base,
        &token,
        "video.mp4",
        "video/mp4",
        (0..20 * MB).map(|i| (i % 251) as u8).collect(),
    )
    .await?;
    let mut paths = Vec::new();
    for chunk in uploads.chunks(10) {
        let message = reply(&http, &base, &token, &ticket, chunk).await?;
        paths.extend((0..chunk.len()).map(|n| format!("/media/{message}.{n}")));
    }
    let video_path = format!(
        "/media/{}.0",
        reply(&http, &base, &token, &ticket, std::slice::from_ref(&video)).await?
    );
    let stored: Vec<std::path::PathBuf> =
        uploads.iter().map(|id| dir.join("up").join(id)).collect();

    let mut serve_rates = Vec::new();
    let mut cat_rates = Vec::new();
    let mut ratios = Vec::new();
    let mut peaks = Vec::new();
    for round in 1..=rounds {
        let (bytes, took) = serve(&http, &base, &token, &paths, clients, passes).await?;
        let serve_rate = bytes as f64 / MB as f64 / took.as_secs_f64();
        let (cat_bytes, cat_took) = cat(&stored, clients * passes)?;
        anyhow::ensure!(
            cat_bytes == bytes,
            "cat read {cat_bytes} bytes, the server sent {bytes}"
        );
        let cat_rate = cat_bytes as f64 / MB as f64 / cat_took.as_secs_f64();
        let peak = video_memory(&http, &base, &token, &video_path, video_clients).await?;
        println!(
            "round {round}: serving {serve_rate:.0} MB/s, cat {cat_rate:.0} MB/s, ratio {:.2}; \
             {video_clients} clients of a 20 MB video: resident memory +{:.1} MB at peak",
            serve_rate / cat_rate,
            peak as f64 / MB as f64
        );
        serve_rates.push(serve_rate);
        cat_rates.push(cat_rate);
        ratios.push(serve_rate / cat_rate);
        peaks.push(peak as f64 / MB as f64);
    }
    println!(
        "median of {rounds} rounds: serving {:.0} MB/s ({clients} clients, {files} files of \
         {file_mb} MB, {passes} passes), cat {:.0} MB/s, ratio {:.2}; peak resident memory \
         growth while {video_clients} clients download a 20 MB video: {:.1} MB (whole copies \
         would take {} MB)",
        median(&mut serve_rates),
        median(&mut cat_rates),
        median(&mut ratios),
        median(&mut peaks),
        video_clients as u64 * 20
    );
    drop(app.stop().await);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn sign_in(app: &TestApp, http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let auth = api::auth::AuthService::new(
        CommandService::new(PostgresLog::new(app.pool().clone())),
        None,
        api::auth::AuthConfig::default(),
    )
    .await?;
    let password = "correct horse battery staple";
    auth.create_agent(
        api::auth::NewAgent {
            email: "bench@example.com".to_owned(),
            name: "Bench".to_owned(),
            role: domain::agent::Role::Admin,
            password: Some(password.to_owned()),
            by: None,
        },
        &CommandContext::new(Actor::system("bench")),
    )
    .await?;
    let body: Value = http
        .post(format!("{base}/graphql"))
        .json(&json!({
            "query": "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
            "variables": {"input": {"email": "bench@example.com", "password": password}},
        }))
        .send()
        .await?
        .json()
        .await?;
    body["data"]["login"]["accessToken"]
        .as_str()
        .map(str::to_owned)
        .context("sign-in failed")
}

async fn open_ticket(app: &TestApp) -> anyhow::Result<String> {
    let routed = CommandService::new(PostgresLog::new(app.pool().clone()))
        .route_customer_message(
            &RouteCustomerMessage {
                customer: CustomerId(1),
                profile: CustomerProfile {
                    first_name: "Customer".into(),
                    last_name: None,
                    username: None,
                    language_code: None,
                },
                category: None,
                new_ticket_id: TicketId(uuid::Uuid::now_v7()),
                channel: Channel::Telegram,
                message: CustomerMessage {
                    message_id: MessageId(uuid::Uuid::now_v7()),
                    telegram_message_id: TelegramMessageId(1),
                    reply_to: None,
                    content: MessageContent::text("here is the video"),
                },
                reopen_window: TimeDelta::days(7),
                at: Utc::now(),
            },
            &CommandContext::new(Actor::system("bench")),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let position = routed.executed.position.context("no position")?;
    let names: Vec<&str> = vec!["tickets"];
    projections::wait_for(app.pool(), &names, position, Duration::from_secs(30)).await?;
    Ok(routed.ticket_id.0.to_string())
}

async fn upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    mime: &str,
    body: Vec<u8>,
) -> anyhow::Result<String> {
    let answer: Value = http
        .post(format!("{base}/media"))
        .bearer_auth(token)
        .header("content-type", mime)
        .header("x-file-name", name)
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("upload failed: {answer}"))
}

async fn reply(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    ticket: &str,
    uploads: &[String],
) -> anyhow::Result<String> {
    let uploads: Vec<Value> = uploads.iter().map(|id| json!({ "uploadId": id })).collect();
    let body: Value = http
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { messageId position } }",
            "variables": {"input": {"ticketId": ticket, "uploads": uploads}},
        }))
        .send()
        .await?
        .json()
        .await?;
    let message = body["data"]["replyToTicket"]["messageId"]
        .as_str()
        .with_context(|| format!("reply failed: {body}"))?
        .to_owned();
    // Served once the messages read model holds the reply.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = http
            .head(format!("{base}/media/{message}.0"))
            .bearer_auth(token)
            .send()
            .await?;
        if answer.status().is_success() {
            return Ok(message);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the reply's media never became servable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Downloads `body` of `path`, counting its bytes as they arrive; returns the count.
async fn download(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
) -> anyhow::Result<u64> {
    let answer = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(answer.status().is_success(), "{path}: {}", answer.status());
    let mut stream = answer.bytes_stream();
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        n += chunk?.len() as u64;
    }
    Ok(n)
}

async fn serve(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    paths: &[String],
    clients: usize,
    passes: usize,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            // One connection per client.
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap_or_else(|_| http.clone());
            let base = base.to_owned();
            let token = token.to_owned();
            let paths = paths.to_vec();
            tokio::spawn(async move {
                let mut bytes = 0;
                for pass in 0..passes {
                    let path = &paths[(client + pass * clients) % paths.len()];
                    bytes += download(&http, &base, &token, path).await?;
                }
                anyhow::Ok(bytes)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok((total, started.elapsed()))
}

/// Reads `reads` files (the stored ones, round-robin) with `cat`, through a pipe.
fn cat(stored: &[std::path::PathBuf], reads: usize) -> anyhow::Result<(u64, Duration)> {
    use std::io::Read;
    let args: Vec<&std::path::PathBuf> = (0..reads).map(|n| &stored[n % stored.len()]).collect();
    let started = Instant::now();
    let mut child = std::process::Command::new("cat")
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut out = child.stdout.take().context("no pipe")?;
    let mut buffer = vec![0; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    child.wait()?;
    Ok((total, started.elapsed()))
}

/// The peak growth of resident memory while `clients` download the video at once.
async fn video_memory(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    clients: usize,
) -> anyhow::Result<u64> {
    let before = rss();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, base, token, path) = (
                http.clone(),
                base.to_owned(),
                token.to_owned(),
                path.to_owned(),
            );
            tokio::spawn(async move { download(&http, &base, &token, &path).await })
        })
        .collect();
    for task in tasks {
        let bytes = task.await??;
        anyhow::ensure!(bytes == 20 * MB, "the video came with {bytes} bytes");
    }
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    Ok(peak.load(Ordering::Relaxed).saturating_sub(before))
}
