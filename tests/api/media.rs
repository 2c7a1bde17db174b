//! Media end to end, on both storage backends (a local directory, and a real S3-compatible
//! server, `moto_server`, started by the test): every kind of file a customer sends (the
//! bot's fixtures, posted to the webhook) is fetched from the fake Bot API once however many
//! ask at once, stored, and served with its type, name, ETag and byte ranges; callers outside
//! the ticket's category, without `tickets:read`, or with an expired or altered signed URL are
//! refused; files over the Bot API's limit, gone, cut off or slow are answered as such; and
//! files agents upload reach Telegram as multipart uploads by the method of their kind, the
//! file id Telegram answers being reused for the next send.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bot::config::BotConfig;
use domain::agent::Role;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::eventually;
use testkit::telegram::{FakeTelegram, FileServing, TOKEN};

use crate::support::{Agent, Server};

const SECRET: &str = "media-webhook-secret";
const WEBHOOK_PATH: &str = "/telegram/webhook";
const PATIENCE: Duration = Duration::from_secs(30);

/// Where the server under test keeps media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    S3,
}

/// A real S3-compatible server (moto) on a free port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts `moto_server` and makes the bucket `media`.
    async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install \"moto[server]\"; scripts/test.sh does)");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        eventually(
            async || http.get(&moto.endpoint).send().await.is_ok(),
            PATIENCE,
        )
        .await;
        let made = http
            .put(format!("{}/media", moto.endpoint))
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success(), "bucket: {}", made.status());
        moto
    }
}

/// The storage of one test: a directory of its own, or a bucket on a moto server of its own.
struct Store {
    dir: PathBuf,
    moto: Option<Moto>,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Store {
    async fn new(backend: Backend) -> Store {
        let dir = std::env::temp_dir().join(format!("ledgerdesk-media-{}", uuid::Uuid::now_v7()));
        let moto = match backend {
            Backend::Local => None,
            Backend::S3 => Some(Moto::start().await),
        };
        Store { dir, moto }
    }

    fn config(&self) -> media::MediaConfig {
        let backend = match &self.moto {
            None => media::Backend::Local {
                dir: self.dir.clone(),
            },
            Some(moto) => media::Backend::S3(media::S3Config {
                endpoint: Some(moto.endpoint.clone()),
                bucket: "media".to_owned(),
                region: "us-east-1".to_owned(),
                access_key_id: Some(SecretString::from("testing")),
                secret_access_key: Some(SecretString::from("testing")),
                prefix: "ledgerdesk".to_owned(),
                allow_http: true,
            }),
        };
        media::MediaConfig {
            backend,
            upload_limit: 64 * 1024,
            ..media::MediaConfig::default()
        }
    }
}

/// A server with its bot on the webhook, talking to `fake`, keeping media in `store`.
async fn start(tag: &str, fake: &FakeTelegram, store: &Store) -> Server {
    start_with(tag, fake, store.config()).await
}

/// As [`start`], with these media settings.
async fn start_with(tag: &str, fake: &FakeTelegram, media: media::MediaConfig) -> Server {
    let config = BotConfig::polling(SecretString::from(TOKEN))
        .unwrap()
        .with_api_url(fake.url())
        .with_webhook(
            &format!("https://desk.example{WEBHOOK_PATH}"),
            Some(SecretString::from(SECRET)),
        )
        .unwrap();
    Server::start_configured(tag, |settings| {
        settings.bot = Some(config);
        settings.api.media = Some(media);
    })
    .await
}

/// The fixture `bot/tests/fixtures/<name>.json`.
fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("bot/tests/fixtures")
        .join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn post_update(server: &Server, update: &Value) {
    let status = server
        .http
        .post(format!("http://{}{WEBHOOK_PATH}", server.addr))
        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .json(update)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "{update}");
}

/// Waits until the messages read model holds `n` customer messages.
async fn wait_for_messages(server: &Server, n: i64) {
    eventually(
        async || {
            let seen: i64 =
                sqlx::query_scalar("select count(*) from messages where direction = 'in'")
                    .fetch_one(&server.pool)
                    .await
                    .unwrap();
            seen >= n
        },
        PATIENCE,
    )
    .await;
}

/// Every message of every ticket, as GraphQL shows it to `token`, by Telegram message id.
async fn messages(server: &Server, token: &str) -> Vec<Value> {
    // The tickets read model may show a ticket a moment after its messages.
    let tickets: Vec<uuid::Uuid> = eventually(
        async || {
            let tickets: Vec<uuid::Uuid> = sqlx::query_scalar(
                "select distinct m.ticket_id from messages m \
                   join tickets t on t.id = m.ticket_id",
            )
            .fetch_all(&server.pool)
            .await
            .unwrap();
            let all: i64 = sqlx::query_scalar("select count(distinct ticket_id) from messages")
                .fetch_one(&server.pool)
                .await
                .unwrap();
            (i64::try_from(tickets.len()).unwrap() == all && all > 0).then_some(tickets)
        },
        PATIENCE,
    )
    .await;
    let mut found = Vec::new();
    for ticket in tickets {
        let data = server
            .ok(
                token,
                "query($id: ID!) { ticket(id: $id) { messages(first: 50) { edges { node {
                    messageId telegramMessageId direction kind
                    media { mediaId url thumbnailUrl kind fileId mimeType fileName
                            thumbnail { fileId } } } } } } }",
                json!({ "id": ticket.to_string() }),
            )
            .await;
        for edge in data["ticket"]["messages"]["edges"].as_array().unwrap() {
            found.push(edge["node"].clone());
        }
    }
    found
}

/// Bytes standing for the file `file_id` of `kind`: a type's magic number first, so the
/// server can tell the type when Telegram gave none, then enough bytes for ranges.
fn bytes_for(kind: &str, file_id: &str) -> Vec<u8> {
    let mut bytes: Vec<u8> = match kind {
        "photo" | "thumbnail" => b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00".to_vec(),
        "sticker" => b"RIFF\x00\x10\x00\x00WEBPVP8 ".to_vec(),
        _ => b"LDTEST".to_vec(),
    };
    while bytes.len() < 40_000 {
        bytes.extend_from_slice(file_id.as_bytes());
    }
    bytes
}

/// The file of a fixture's message: (kind, file, thumbnail), as `projections` keeps them.
fn files_of(message: &Value) -> Option<(String, Value, Option<Value>)> {
    const KINDS: [&str; 8] = [
        "animation",
        "audio",
        "document",
        "photo",
        "sticker",
        "video",
        "video_note",
        "voice",
    ];
    let kind = KINDS
        .into_iter()
        .find(|kind| message.get(*kind).is_some())?;
    if kind == "photo" {
        let sizes = message["photo"].as_array().unwrap();
        let area = |s: &Value| s["width"].as_i64().unwrap() * s["height"].as_i64().unwrap();
        let largest = sizes.iter().max_by_key(|s| area(s)).unwrap().clone();
        let smallest = sizes.iter().min_by_key(|s| area(s)).unwrap().clone();
        let thumbnail = (smallest != largest).then_some(smallest);
        return Some((kind.to_owned(), largest, thumbnail));
    }
    let file = message[kind].clone();
    let thumbnail = file.get("thumbnail").cloned();
    Some((kind.to_owned(), file, thumbnail))
}

async fn get(
    server: &Server,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = server.http.get(format!("http://{}{path}", server.addr));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

const KINDS: [&str; 8] = [
    "message_photo",
    "message_video",
    "message_document",
    "message_audio",
    "message_voice",
    "message_video_note",
    "message_sticker",
    "message_animation",
];

async fn every_incoming_media_kind_is_fetched_once_and_served_with_its_headers(backend: Backend) {
    let fake = FakeTelegram::start().await;
    let store = Store::new(backend).await;
    let server = start("media_kinds", &fake, &store).await;
    let admin = server.admin().await;
    let mut expected = Vec::new();
    for name in KINDS {
        let update = fixture(name);
        let (kind, file, thumbnail) = files_of(&update["message"]).unwrap();
        let file_id = file["file_id"].as_str().unwrap().to_owned();
        let bytes = bytes_for(&kind, &file_id);
        fake.add_file(&file_id, bytes.clone(), FileServing::Normal);
        let thumbnail = thumbnail.map(|thumbnail| {
            let id = thumbnail["file_id"].as_str().unwrap().to_owned();
            let bytes = bytes_for("thumbnail", &id);
            fake.add_file(&id, bytes.clone(), FileServing::Normal);
            (id, bytes)
        });
        let mime = match file["mime_type"].as_str() {
            Some(mime) => mime.to_owned(),
            None if kind == "photo" => "image/jpeg".to_owned(),
            None if kind == "sticker" => "image/webp".to_owned(),
            None => "application/octet-stream".to_owned(),
        };
        let telegram_id = update["message"]["message_id"].as_i64().unwrap();
        expected.push((telegram_id, file_id, bytes, mime, thumbnail));
        post_update(&server, &update).await;
    }
    wait_for_messages(&server, i64::try_from(KINDS.len()).unwrap()).await;
    let shown = messages(&server, &admin.token).await;
    for (telegram_id, file_id, bytes, mime, thumbnail) in expected {
        let message = shown
            .iter()
            .find(|m| m["telegramMessageId"].as_i64() == Some(telegram_id))
            .unwrap();
        let media = &message["media"];
        assert_eq!(media["fileId"], json!(file_id), "{message:#}");
        let id = media["mediaId"].as_str().unwrap();
        let path = format!("/media/{id}");

        // Eight first requests at once: one download, eight whole files.
        let answers =
            futures::future::join_all((0..8).map(|_| get(&server, &path, Some(&admin.token), &[])))
                .await;
        for answer in answers {
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
            let headers = answer.headers().clone();
            assert_eq!(header(&headers, header::CONTENT_TYPE), mime, "{file_id}");
            assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert!(header(&headers, header::CACHE_CONTROL).starts_with("private"));
            assert_eq!(header(&headers, header::ACCEPT_RANGES), "bytes");
            let disposition = header(&headers, header::CONTENT_DISPOSITION);
            match media["fileName"].as_str() {
                Some(name) => assert!(disposition.contains(name), "{disposition}"),
                None => assert!(!disposition.contains("filename")),
            }
            assert_eq!(answer.bytes().await.unwrap().as_ref(), bytes.as_slice());
        }
        assert_eq!(fake.downloads(&file_id), 1, "{file_id} downloaded once");

        // Later requests come from storage; the signed URL needs no header.
        let url = media["url"].as_str().unwrap();
        let signed = get(&server, url, None, &[]).await;
        assert_eq!(signed.status(), StatusCode::OK);
        let etag = header(signed.headers(), header::ETAG).to_owned();
        assert_eq!(signed.bytes().await.unwrap().as_ref(), bytes.as_slice());
        assert_eq!(fake.downloads(&file_id), 1);

        // One range, a range past the end, and a known ETag.
        let part = get(&server, url, None, &[("range", "bytes=2-9")]).await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            header(part.headers(), header::CONTENT_RANGE),
            format!("bytes 2-9/{}", bytes.len())
        );
        assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[2..10]);
        let tail = get(&server, url, None, &[("range", "bytes=-5")]).await;
        assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            tail.bytes().await.unwrap().as_ref(),
            &bytes[bytes.len() - 5..]
        );
        let past = format!("bytes={}-", bytes.len());
        let outside = get(&server, url, None, &[("range", &past)]).await;
        assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(
            header(outside.headers(), header::CONTENT_RANGE),
            format!("bytes */{}", bytes.len())
        );
        let cached = get(&server, url, None, &[("if-none-match", &etag)]).await;
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

        match thumbnail {
            Some((thumbnail_id, thumbnail_bytes)) => {
                let url = media["thumbnailUrl"].as_str().unwrap();
                let answer = get(&server, url, None, &[]).await;
                assert_eq!(answer.status(), StatusCode::OK);
                assert_eq!(header(answer.headers(), header::CONTENT_TYPE), "image/jpeg");
                assert_eq!(
                    answer.bytes().await.unwrap().as_ref(),
                    thumbnail_bytes.as_slice()
                );
                assert_eq!(fake.downloads(&thumbnail_id), 1);
            }
            None => assert_eq!(media["thumbnailUrl"], Value::Null),
        }
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from media_objects")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    let fetched = i64::try_from(fake.calls_of("getfile").len()).unwrap();
    assert_eq!(stored, fetched, "one object per file fetched");
    server.stop().await;
}

/// Signs a URL for `media` with the server's key, as the server would, with any expiry.
async fn sign(server: &Server, media: &str, expires: i64, by: &str) -> String {
    let key: Vec<u8> = sqlx::query_scalar("select secret from media_signing_key")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    let sig = media::Signer::new(key).sign(media, expires, by);
    format!("/media/{media}?exp={expires}&by={by}&sig={sig}")
}

fn principal(agent: &Agent) -> String {
    let id = uuid::Uuid::try_parse(&agent.id)
        .ok()
        .or_else(|| api::graphql::ids::uuid_of("Agent", &agent.id.as_str().into()).ok())
        .unwrap();
    format!("a{}", id.simple())
}

async fn media_are_refused_outside_the_ticket_and_with_an_expired_or_altered_url(backend: Backend) {
    let fake = FakeTelegram::start().await;
    let store = Store::new(backend).await;
    let server = start("media_refused", &fake, &store).await;
    let admin = server.admin().await;
    let billing = server.category(&admin, "Billing").await;
    let update = fixture("message_photo");
    let (_, file, _) = files_of(&update["message"]).unwrap();
    let file_id = file["file_id"].as_str().unwrap();
    fake.add_file(file_id, bytes_for("photo", file_id), FileServing::Normal);
    post_update(&server, &update).await;
    wait_for_messages(&server, 1).await;
    let shown = messages(&server, &admin.token).await;
    let media = &shown[0]["media"];
    let id = media["mediaId"].as_str().unwrap();
    let url = media["url"].as_str().unwrap();
    let path = format!("/media/{id}");
    assert_eq!(get(&server, url, None, &[]).await.status(), StatusCode::OK);

    // Nobody, a category-bound agent outside the ticket's category (even with a URL signed
    // for them), a token without tickets:read.
    assert_eq!(
        get(&server, &path, None, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let outsider = server
        .scoped_agent(&admin, "billing@example.com", &[billing])
        .await;
    assert_eq!(
        get(&server, &path, Some(&outsider.token), &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let future = chrono::Utc::now().timestamp() + 300;
    let theirs = sign(&server, id, future, &principal(&outsider)).await;
    assert_eq!(
        get(&server, &theirs, None, &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    let customers_only = server.api_token(&admin, &["customers:read"]).await;
    assert_eq!(
        get(&server, &path, Some(&customers_only), &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let reader = server.api_token(&admin, &["tickets:read"]).await;
    assert_eq!(
        get(&server, &path, Some(&reader), &[]).await.status(),
        StatusCode::OK
    );
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    assert_eq!(
        get(&server, &path, Some(&auditor.token), &[])
            .await
            .status(),
        StatusCode::OK
    );

    // An expired URL, and URLs with their signature, expiry, signer or media changed.
    let expired = sign(
        &server,
        id,
        chrono::Utc::now().timestamp() - 1,
        &principal(&admin),
    )
    .await;
    let answer = get(&server, &expired, None, &[]).await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await.unwrap().contains("expired"));
    let tampered_sig = {
        let (head, sig) = url.rsplit_once("sig=").unwrap();
        let flipped: String = sig
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    if c == '0' { '1' } else { '0' }
                } else {
                    c
                }
            })
            .collect();
        format!("{head}sig={flipped}")
    };
    let exp = url.split("exp=").nth(1).unwrap().split('&').next().unwrap();
    let later = (exp.parse::<i64>().unwrap() + 3600).to_string();
    let altered = [
        tampered_sig,
        url.replace(&format!("exp={exp}"), &format!("exp={later}")),
        url.replace(&principal(&admin), &principal(&outsider)),
        url.replace(id, &format!("{id}.thumb")),
        url.split("&sig=").next().unwrap().to_owned(),
    ];
    for url in altered {
        let status = get(&server, &url, None, &[]).await.status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{url}");
    }
    assert_eq!(fake.downloads(file_id), 1);
    server.stop().await;
}

/// A document message with its own file ids, as the fixture's.
fn document(update_id: i64, message_id: i64, file_id: &str) -> Value {
    let mut update = fixture("message_document");
    update["update_id"] = json!(update_id);
    update["message"]["message_id"] = json!(message_id);
    update["message"]["document"]["file_id"] = json!(file_id);
    update["message"]["document"]["file_unique_id"] = json!(format!("U{file_id}"));
    update
}

async fn files_too_large_gone_cut_off_or_slow_are_answered_as_such(backend: Backend) {
    let fake = FakeTelegram::start().await;
    let store = Store::new(backend).await;
    let server = start("media_failures", &fake, &store).await;
    let admin = server.admin().await;
    let cases = [
        ("big", FileServing::TooBig),
        ("gone", FileServing::Missing),
        ("cut", FileServing::Dropped),
        ("slow", FileServing::Slow(Duration::from_millis(100))),
    ];
    for (n, (file_id, serving)) in cases.iter().enumerate() {
        let n = i64::try_from(n).unwrap();
        fake.add_file(file_id, bytes_for("document", file_id), serving.clone());
        post_update(&server, &document(960_000_000 + n, 9_000 + n, file_id)).await;
    }
    wait_for_messages(&server, 4).await;
    let shown = messages(&server, &admin.token).await;
    let path_of = |file_id: &str| {
        let message = shown
            .iter()
            .find(|m| m["media"]["fileId"] == json!(file_id))
            .unwrap();
        format!("/media/{}", message["media"]["mediaId"].as_str().unwrap())
    };

    let big = get(&server, &path_of("big"), Some(&admin.token), &[]).await;
    assert_eq!(big.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = big.json().await.unwrap();
    assert_eq!(body["code"], "TOO_LARGE_TO_FETCH");
    assert_eq!(body["media"]["file_name"], "invoice-48213.pdf", "{body:#}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("local Bot API server")
    );

    let gone = get(&server, &path_of("gone"), Some(&admin.token), &[]).await;
    assert_eq!(gone.status(), StatusCode::GONE);

    let cut = get(&server, &path_of("cut"), Some(&admin.token), &[]).await;
    assert_eq!(cut.status(), StatusCode::BAD_GATEWAY);
    let stored: i64 =
        sqlx::query_scalar("select count(*) from media_objects where key = 'tg/Ucut'")
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "nothing of a cut-off download is kept");
    let failures = server
        .http
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        failures.contains("ledgerdesk_media_fetch_failures_total{reason=\"unavailable\"}"),
        "{failures}"
    );

    let slow_path = path_of("slow");
    let answers = futures::future::join_all(
        (0..6).map(|_| get(&server, &slow_path, Some(&admin.token), &[])),
    )
    .await;
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            answer.bytes().await.unwrap().as_ref(),
            bytes_for("document", "slow").as_slice()
        );
    }
    assert_eq!(fake.downloads("slow"), 1);
    let metrics = server
        .http
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ledgerdesk_media_stored_files 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "ledgerdesk_media_stored_bytes {}",
            bytes_for("document", "slow").len()
        )),
        "{metrics}"
    );
    server.stop().await;
}

async fn upload(
    server: &Server,
    token: &str,
    query: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    server
        .http
        .post(format!("http://{}/media{query}", server.addr))
        .bearer_auth(token)
        .header("content-type", mime)
        .header("x-file-name", name)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn reply(server: &Server, agent: &Agent, ticket: &str, uploads: Value) -> String {
    let data = server
        .ok(
            &agent.token,
            "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) {
                messageId position } }",
            json!({ "input": { "ticketId": ticket, "uploads": uploads } }),
        )
        .await;
    data["replyToTicket"]["messageId"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn uploads_go_to_telegram_by_their_kind_and_later_sends_reuse_the_file_id(backend: Backend) {
    let fake = FakeTelegram::start().await;
    let store = Store::new(backend).await;
    let server = start("media_uploads", &fake, &store).await;
    let admin = server.admin().await;
    let agent = server.agent(Role::Agent, "agent@example.com").await;
    post_update(&server, &fixture("message_text")).await;
    wait_for_messages(&server, 1).await;
    let ticket = eventually(
        async || {
            sqlx::query_scalar::<_, uuid::Uuid>("select id from tickets")
                .fetch_optional(&server.pool)
                .await
                .unwrap()
        },
        PATIENCE,
    )
    .await
    .to_string();

    let png = {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.resize(5_000, 7);
        png
    };
    let sent = upload(
        &server,
        &agent.token,
        "",
        "../receipt\".png",
        "image/png",
        png.clone(),
    )
    .await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let photo: Value = sent.json().await.unwrap();
    assert_eq!(photo["kind"], "photo");
    assert_eq!(photo["fileName"], "receipt_.png");
    assert_eq!(photo["size"], 5_000);
    let pdf = upload(
        &server,
        &agent.token,
        "?kind=document",
        "scan.png",
        "image/png",
        png.clone(),
    )
    .await;
    let pdf: Value = pdf.json().await.unwrap();
    assert_eq!(pdf["kind"], "document");
    let voice = upload(
        &server,
        &agent.token,
        "",
        "note.ogg",
        "audio/ogg",
        vec![1; 300],
    )
    .await;
    let voice: Value = voice.json().await.unwrap();
    assert_eq!(voice["kind"], "voice");

    // Bounded, and only for those who may reply.
    let big = upload(
        &server,
        &agent.token,
        "",
        "big.bin",
        "application/octet-stream",
        vec![0; 65 * 1024],
    )
    .await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let auditor = server.agent(Role::Auditor, "auditor@example.com").await;
    let refused = upload(
        &server,
        &auditor.token,
        "",
        "a.png",
        "image/png",
        png.clone(),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // Another agent's upload is not theirs to send.
    let body = server
        .gql(
            Some(&admin.token),
            "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { messageId } }",
            json!({ "input": { "ticketId": ticket, "uploads": [{ "uploadId": photo["id"] }] } }),
        )
        .await;
    assert_eq!(crate::support::code(&body), Some("NOT_FOUND"), "{body:#}");

    let first = reply(
        &server,
        &agent,
        &ticket,
        json!([{ "uploadId": photo["id"] }, { "uploadId": pdf["id"] }, { "uploadId": voice["id"] }]),
    )
    .await;
    let photos = fake.wait_for_calls("sendphoto", 1, PATIENCE).await;
    assert_eq!(
        photos[0].params["photo"]["file_name"], "receipt_.png",
        "{:?}",
        photos[0]
    );
    assert_eq!(photos[0].params["photo"]["size"], 5_000);
    let documents = fake.wait_for_calls("senddocument", 1, PATIENCE).await;
    assert_eq!(documents[0].params["document"]["size"], 5_000);
    let voices = fake.wait_for_calls("sendvoice", 1, PATIENCE).await;
    assert_eq!(voices[0].params["voice"]["size"], 300);
    let recorded = format!("uploaded-{}", photos[0].message_id.unwrap());
    let photo_id = uuid::Uuid::try_parse(photo["id"].as_str().unwrap()).unwrap();
    eventually(
        async || {
            let known: Option<String> =
                sqlx::query_scalar("select telegram_file_id from media_uploads where id = $1")
                    .bind(photo_id)
                    .fetch_one(&server.pool)
                    .await
                    .unwrap();
            known.as_deref() == Some(recorded.as_str())
        },
        PATIENCE,
    )
    .await;

    // The second send goes by the file id Telegram gave.
    reply(
        &server,
        &agent,
        &ticket,
        json!([{ "uploadId": photo["id"] }]),
    )
    .await;
    let photos = fake.wait_for_calls("sendphoto", 2, PATIENCE).await;
    assert_eq!(photos[1].params["photo"], json!(recorded));

    // The reply's files are served from storage.
    let message = uuid::Uuid::try_parse(&first).unwrap();
    for (n, expected) in [(0, png.clone()), (2, vec![1; 300])] {
        let answer = get(
            &server,
            &format!("/media/{message}.{n}"),
            Some(&agent.token),
            &[],
        )
        .await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.bytes().await.unwrap().as_ref(), expected.as_slice());
    }
    assert_eq!(
        fake.calls_of("getfile").len(),
        0,
        "uploads are never fetched back"
    );
    server.stop().await;
}

async fn incoming_files_are_prefetched_when_asked_and_copies_past_retention_go(backend: Backend) {
    let fake = FakeTelegram::start().await;
    let store = Store::new(backend).await;
    let config = media::MediaConfig {
        prefetch: true,
        retention: Some(Duration::from_secs(24 * 3600)),
        ..store.config()
    };
    let server = start_with("media_prefetch", &fake, config.clone()).await;
    let admin = server.admin().await;
    let update = fixture("message_voice");
    let (_, file, _) = files_of(&update["message"]).unwrap();
    let file_id = file["file_id"].as_str().unwrap().to_owned();
    let bytes = bytes_for("voice", &file_id);
    fake.add_file(&file_id, bytes.clone(), FileServing::Normal);
    post_update(&server, &update).await;

    // Fetched as it arrived, before anyone asked.
    let key = format!("tg/{}", file["file_unique_id"].as_str().unwrap());
    eventually(
        async || {
            sqlx::query_scalar::<_, i64>("select count(*) from media_objects where key = $1")
                .bind(&key)
                .fetch_one(&server.pool)
                .await
                .unwrap()
                == 1
        },
        PATIENCE,
    )
    .await;
    assert_eq!(fake.downloads(&file_id), 1);
    wait_for_messages(&server, 1).await;
    let shown = messages(&server, &admin.token).await;
    let path = format!("/media/{}", shown[0]["media"]["mediaId"].as_str().unwrap());
    let answer = get(&server, &path, Some(&admin.token), &[]).await;
    assert_eq!(answer.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(fake.downloads(&file_id), 1);

    // A copy younger than the retention stays; an older one goes, from the table and the
    // storage; the file id stays, so the next request fetches it again.
    let retention = media::MediaService::new(server.pool.clone(), config)
        .await
        .unwrap();
    assert_eq!(retention.apply_retention().await.unwrap(), 0);
    sqlx::query("update media_objects set stored_at = now() - interval '2 days' where key = $1")
        .bind(&key)
        .execute(&server.pool)
        .await
        .unwrap();
    assert_eq!(retention.apply_retention().await.unwrap(), 1);
    assert!(retention.object(&key).await.unwrap().is_none());
    assert!(matches!(
        retention.read(&key, None).await,
        Err(media::MediaError::Storage(media::StorageError::Missing))
    ));
    let again = get(&server, &path, Some(&admin.token), &[]).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(fake.downloads(&file_id), 2);
    server.stop().await;
}

/// Each scenario against a local directory and against S3.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn local() {
                    super::$scenario(super::Backend::Local).await;
                }

                #[tokio::test]
                async fn s3() {
                    super::$scenario(super::Backend::S3).await;
                }
            }
        )*
    };
}

on_both_backends!(
    every_incoming_media_kind_is_fetched_once_and_served_with_its_headers,
    media_are_refused_outside_the_ticket_and_with_an_expired_or_altered_url,
    files_too_large_gone_cut_off_or_slow_are_answered_as_such,
    uploads_go_to_telegram_by_their_kind_and_later_sends_reuse_the_file_id,
    incoming_files_are_prefetched_when_asked_and_copies_past_retention_go,
);

#[tokio::test]
async fn forgetting_a_customer_deletes_their_stored_files_and_refuses_them_since() {
    let fake = FakeTelegram::start().await;
    let store = Store::new(Backend::Local).await;
    let server = start("media_forget", &fake, &store).await;
    let admin = server.admin().await;
    let update = fixture("message_photo");
    let (kind, file, _) = files_of(&update["message"]).unwrap();
    let file_id = file["file_id"].as_str().unwrap().to_owned();
    fake.add_file(&file_id, bytes_for(&kind, &file_id), FileServing::Normal);
    post_update(&server, &update).await;
    wait_for_messages(&server, 1).await;
    let shown = messages(&server, &admin.token).await;
    let id = shown[0]["media"]["mediaId"].as_str().unwrap().to_owned();
    let path = format!("/media/{id}");
    assert_eq!(
        get(&server, &path, Some(&admin.token), &[]).await.status(),
        StatusCode::OK
    );
    let stored = || async {
        let count: i64 = sqlx::query_scalar("select count(*) from media_objects")
            .fetch_one(&server.pool)
            .await
            .unwrap();
        count
    };
    assert_eq!(stored().await, 1);

    let customer = update["message"]["from"]["id"].as_i64().unwrap();
    let forgotten = server
        .ok(
            &admin.token,
            "mutation($customer: ID!) { forgetCustomer(input: {customerId: $customer}) \
             { keyDeleted filesDeleted } }",
            json!({ "customer": customer.to_string() }),
        )
        .await;
    assert_eq!(
        forgotten["forgetCustomer"],
        json!({ "keyDeleted": true, "filesDeleted": 1 })
    );
    assert_eq!(stored().await, 0, "the stored copy is deleted");
    let head = eventlog::EventLog::head(&server.log).await.unwrap();
    server.caught_up(head).await;
    // Refused with a clear answer, and not fetched from Telegram again.
    let answer = get(&server, &path, Some(&admin.token), &[]).await;
    assert_eq!(answer.status(), StatusCode::GONE);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["code"], json!("FORGOTTEN"), "{body}");
    assert_eq!(fake.downloads(&file_id), 1);
    assert_eq!(stored().await, 0);
    server.stop().await;
}
