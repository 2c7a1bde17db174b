//! Hostile requests and connections: documents that cost far more to check than to send,
//! requests and headers that never finish, idle sockets, and more connections or subscriptions
//! than a client may hold. Every load stays on 127.0.0.1 and is bounded.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{Server, code, test_config};
use crate::ws::{Frame, Protocol, Ws};

/// A chain of fragments, each spreading the one before twice: `levels` of them double the
/// expanded size each time.
fn doubling_chain(levels: usize) -> String {
    let mut text = String::from("fragment F0 on Query { __typename }\n");
    for level in 1..=levels {
        let below = level - 1;
        text.push_str(&format!(
            "fragment F{level} on Query {{ ...F{below} ...F{below} }}\n"
        ));
    }
    text.push_str(&format!("query {{ ...F{levels} }}"));
    text
}

/// `part` repeated as often as fits in `budget` bytes between `head` and `tail`.
fn filled(head: &str, part: impl Fn(usize) -> String, tail: &str, budget: usize) -> String {
    let mut text = String::from(head);
    let mut n = 0;
    loop {
        let next = part(n);
        if text.len() + next.len() + tail.len() > budget {
            break;
        }
        text.push_str(&next);
        n += 1;
    }
    text.push_str(tail);
    text
}

/// Documents that are cheap to send and, unbounded, expensive to check, each under `budget`
/// bytes.
fn hostile_documents(budget: usize) -> Vec<(&'static str, String)> {
    let deep = |depth: usize, open: &str, close: &str| {
        format!("{}{}", open.repeat(depth), close.repeat(depth))
    };
    vec![
        ("fragment doubling, 25 levels", doubling_chain(25)),
        ("fragment doubling, 60 levels", doubling_chain(60)),
        (
            "wide distinct aliases",
            filled("{", |n| format!(" a{n}: __typename"), " }", budget),
        ),
        (
            "one alias repeated",
            filled("{", |_| " a: __typename".to_owned(), " }", budget),
        ),
        (
            "one alias on conflicting fields",
            filled(
                "{",
                |n| {
                    if n % 2 == 0 {
                        " a: __typename".to_owned()
                    } else {
                        " a: me { id }".to_owned()
                    }
                },
                " }",
                budget,
            ),
        ),
        (
            "deep nesting",
            format!("{{ me {} }}", deep(budget / 8, "{ a ", "}")),
        ),
        (
            "deep list in an argument",
            format!(
                "{{ tickets(first: {}) {{ totalCount }} }}",
                deep(budget / 4, "[", "]")
            ),
        ),
        (
            "deep object in an argument",
            format!(
                "{{ tickets(filter: {}) {{ totalCount }} }}",
                deep(budget / 8, "{a: ", "}")
            ),
        ),
        ("many fragments", {
            let count = budget / 80;
            let mut text: String = (0..count)
                .map(|n| format!("fragment F{n} on Query {{ __typename }}\n"))
                .collect();
            text.push('{');
            text.extend((0..count).map(|n| format!(" ...F{n}")));
            text.push('}');
            text
        }),
        ("a long chain of fragments", {
            let count = budget / 60;
            let mut text = String::from("fragment F0 on Query { __typename }\n");
            for n in 1..count {
                text.push_str(&format!("fragment F{n} on Query {{ ...F{} }}\n", n - 1));
            }
            text.push_str(&format!("{{ ...F{} }}", count - 1));
            text
        }),
        (
            "a cycle of fragments",
            "fragment A on Query { ...B ...B } fragment B on Query { ...A ...A } { ...A }"
                .to_owned(),
        ),
        (
            "directives repeated",
            filled(
                "{ __typename",
                |_| " @skip(if: false)".to_owned(),
                " }",
                budget,
            ),
        ),
        (
            "directives on every field",
            filled(
                "{",
                |n| format!(" a{n}: __typename @include(if: true)"),
                " }",
                budget,
            ),
        ),
        (
            "many operations",
            filled("", |n| format!("query Q{n} {{ __typename }} "), "", budget),
        ),
        (
            "many variables",
            filled(
                "query(",
                |n| format!("$v{n}: Int "),
                ") { __typename }",
                budget,
            ),
        ),
        (
            "many inline fragments",
            filled(
                "{",
                |_| " ... on Query { __typename }".to_owned(),
                " }",
                budget,
            ),
        ),
    ]
}

/// Time for one hostile document, request and answer over 127.0.0.1, on a test machine busy
/// with other builds: the server's own work is well below it (most of it is parsing the
/// text); unbounded, the fragment chains take minutes.
const HOSTILE_BOUND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_documents_are_answered_at_once_and_health_keeps_answering() {
    let server = Server::start("hostile").await;
    let budget = test_config().limits.max_body_bytes - 1_024;
    let health = format!("http://{}/healthz", server.addr);
    let watching = tokio::spawn({
        let http = reqwest::Client::new();
        async move {
            let mut slowest = Duration::ZERO;
            // Runs until the test stops it; ends early only when health is slow or fails.
            loop {
                let started = Instant::now();
                let answered = http.get(&health).send().await;
                slowest = slowest.max(started.elapsed());
                if answered.map(|a| a.status()).ok() != Some(reqwest::StatusCode::OK) {
                    return Err::<(), _>(slowest);
                }
                if slowest > HOSTILE_BOUND {
                    return Err(slowest);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let mut timings = Vec::new();
    for (name, text) in hostile_documents(budget) {
        assert!(text.len() <= budget, "{name}: {} bytes", text.len());
        let started = Instant::now();
        let body = server.gql(None, &text, json!({})).await;
        let took = started.elapsed();
        eprintln!("{name}: {} bytes, {took:?}, {:?}", text.len(), code(&body));
        let longest = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|error| error["message"].as_str())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest <= 1_100, "{name}: a message of {longest} bytes");
        timings.push((name, took, code(&body).map(str::to_owned)));
    }
    for (name, took, _) in &timings {
        assert!(took < &HOSTILE_BOUND, "{name} took {took:?}");
    }
    // The chains are refused for their size, before the schema checks them.
    let refused = |name: &str| {
        timings
            .iter()
            .find(|(n, ..)| *n == name)
            .and_then(|(.., code)| code.clone())
    };
    assert_eq!(
        refused("fragment doubling, 25 levels").as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED")
    );
    let body = server.gql(None, &doubling_chain(25), json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too large"), "{body}");
    assert!(body["data"].is_null(), "{body}");

    // A batch of them is refused operation by operation, as fast.
    let batch: Vec<Value> = (0..10)
        .map(|_| json!({ "query": doubling_chain(40) }))
        .collect();
    let started = Instant::now();
    let answers: Vec<Value> = server
        .http
        .post(server.url())
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(started.elapsed() < HOSTILE_BOUND, "{:?}", started.elapsed());
    assert_eq!(answers.len(), 10);
    assert!(
        answers
            .iter()
            .all(|answer| code(answer) == Some("GRAPHQL_VALIDATION_FAILED")),
        "{answers:?}"
    );

    // A document under the bound still runs.
    let fine = server.gql(None, &doubling_chain(8), json!({})).await;
    assert_eq!(fine["data"]["__typename"], "Query", "{fine}");

    watching.abort();
    match watching.await {
        Err(aborted) if aborted.is_cancelled() => {}
        other => panic!("/healthz was slow or failed meanwhile: {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn a_document_too_large_is_refused_over_a_websocket_too() {
    let server = Server::start("hostile_ws").await;
    let admin = server.admin().await;
    for protocol in [Protocol::TransportWs, Protocol::Legacy] {
        let mut ws = Ws::connect(&server, protocol, &admin.token).await;
        let started = Instant::now();
        ws.subscribe("chain", &doubling_chain(40), json!({})).await;
        assert_eq!(ws.error_code("chain").await, "GRAPHQL_VALIDATION_FAILED");
        assert!(started.elapsed() < HOSTILE_BOUND);
        // The socket stays usable.
        ws.subscribe("me", "{ me { email } }", json!({})).await;
        assert_eq!(ws.data("me").await["me"]["email"], admin.email);
        ws.close().await;
    }
    server.stop().await;
}

/// Reads what the server sends until it closes the connection, or `within` passes
/// (`None`).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn a_request_whose_body_never_comes_is_answered_at_its_deadline() {
    let mut config = test_config();
    config.limits.request_timeout = Duration::from_secs(1);
    let server = Server::start_with("deadline", config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("TIMEOUT") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("no answer at the deadline")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buffer[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_and_idle_connections_are_closed() {
    let mut config = test_config();
    config.server.header_read_timeout = Duration::from_secs(1);
    let server = Server::start_with("slowloris", config).await;

    // Headers that never end, one line every 100 ms.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    for n in 0..100 {
        if slow
            .write_all(format!("x-slow-{n}: still coming\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        // Anything read, or an error, means the server closed it.
        if tokio::time::timeout(Duration::from_millis(100), slow.read(&mut byte))
            .await
            .is_ok()
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "the connection is still open after 10 s of headers");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // A kept-alive connection that sends nothing after its answer.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection stays open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(
        read_until_closed(&mut silent, Duration::from_secs(5)).await,
        Some(String::new())
    );
    server.stop().await;
}

/// A TCP connection to `server` from the loopback address `from` (any of 127.0.0.0/8).
async fn connect_from(server: SocketAddr, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

/// The server's whole answer to `GET path` over a new connection from `from`.
async fn get_from(server: SocketAddr, from: [u8; 4], path: &str) -> String {
    let mut stream = connect_from(server, from).await;
    // The server may answer and close before reading the request.
    let _ = stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
    read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("the answer did not end")
}

/// A client of its own (no kept connections) from `from`.
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(from))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn connections_beyond_the_bounds_are_refused_and_health_answers_from_the_reserve() {
    let mut config = test_config();
    config.server.max_connections = 12;
    config.server.reserved_connections = 4;
    config.server.max_connections_per_address = 4;
    config.server.header_read_timeout = Duration::from_secs(60);
    let server = Server::start_with("connection_caps", config).await;
    let addr = server.addr;

    // One address takes its four; a fifth is refused at once.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(addr, [127, 0, 0, 2]).await);
    }
    let refused = get_from(addr, [127, 0, 0, 2], "/healthz").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_lowercase().contains("retry-after: 5"),
        "{refused}"
    );
    assert!(refused.contains("UNAVAILABLE"), "{refused}");
    let other = get_from(addr, [127, 0, 0, 1], "/healthz").await;
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");

    // Two more addresses take the rest of the eight general connections.
    for from in [[127, 0, 0, 3], [127, 0, 0, 4]] {
        for _ in 0..2 {
            held.push(connect_from(addr, from).await);
        }
    }
    let client = client_from([127, 0, 0, 5]);
    let busy = client
        .post(server.url())
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    assert_eq!(
        busy.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: Value = busy.json().await.unwrap();
    assert_eq!(code(&body), Some("UNAVAILABLE"));
    // Health and readiness still answer, from the reserve.
    for path in ["/healthz", "/readyz"] {
        let answer = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }

    // Once the connections go, requests are served again.
    drop(held);
    testkit::eventually(
        async || {
            client
                .post(server.url())
                .json(&json!({ "query": "{ __typename }" }))
                .send()
                .await
                .is_ok_and(|answer| answer.status() == 200)
        },
        Duration::from_secs(10),
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn websockets_that_never_initialise_or_fall_idle_are_closed() {
    let mut config = test_config();
    config.limits.socket_init_timeout = Duration::from_secs(1);
    config.limits.socket_idle_timeout = Duration::from_secs(1);
    let server = Server::start_with("idle_sockets", config).await;
    let admin = server.admin().await;

    let mut sockets = Vec::new();
    for _ in 0..220 {
        sockets.push(Ws::open(&server, Protocol::TransportWs).await);
    }
    for mut socket in sockets {
        match socket.frame().await {
            Frame::Closed(Some(4408)) => {}
            other => panic!("expected 4408, got {other:?}"),
        }
    }

    // Accepted, with nothing running and nothing said: closed as idle.
    let mut idle = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    let started = Instant::now();
    match idle.frame().await {
        Frame::Closed(Some(1001)) => {}
        other => panic!("expected 1001, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Pings keep a socket open; so does a running subscription.
    let mut pinging = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        pinging.send(json!({ "type": "ping" })).await;
        match pinging.frame().await {
            Frame::Json(pong) => assert_eq!(pong["type"], "pong", "{pong}"),
            other => panic!("closed while pinging: {other:?}"),
        }
    }
    let mut listening = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    listening
        .subscribe("events", "subscription { events { cursor } }", json!({}))
        .await;
    listening.quiet(Duration::from_millis(2_500)).await;
    pinging.close().await;
    listening.close().await;
    server.stop().await;
}

#[tokio::test]
async fn subscriptions_per_socket_and_sockets_per_agent_are_bounded() {
    let mut config = test_config();
    config.limits.max_socket_subscriptions = 3;
    config.limits.max_sockets_per_caller = 2;
    let server = Server::start_with("socket_bounds", config).await;
    let admin = server.admin().await;

    for protocol in [Protocol::TransportWs, Protocol::Legacy] {
        let mut ws = Ws::connect(&server, protocol, &admin.token).await;
        for id in ["1", "2", "3"] {
            ws.subscribe(id, "subscription { events { cursor } }", json!({}))
                .await;
        }
        ws.subscribe("4", "subscription { events { cursor } }", json!({}))
            .await;
        assert_eq!(ws.error_code("4").await, "TOO_MANY_SUBSCRIPTIONS");
        if protocol == Protocol::Legacy {
            ws.completed("4").await;
        }
        // One stopped makes room for another.
        ws.stop("1").await;
        if protocol == Protocol::Legacy {
            ws.completed("1").await;
        }
        ws.subscribe("5", "{ me { email } }", json!({})).await;
        assert_eq!(ws.data("5").await["me"]["email"], admin.email);
        ws.close().await;
    }

    // Two sockets per agent; a third is closed at its `connection_init`.
    let first = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    let _second = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    let mut third = Ws::open(&server, Protocol::TransportWs).await;
    third
        .send(json!({ "type": "connection_init", "payload": { "authorization": admin.token } }))
        .await;
    match third.frame().await {
        Frame::Closed(Some(4429)) => {}
        other => panic!("expected 4429, got {other:?}"),
    }
    // Another agent is not counted with them.
    let other = server
        .agent(domain::agent::Role::Agent, "other@example.com")
        .await;
    Ws::connect(&server, Protocol::TransportWs, &other.token)
        .await
        .close()
        .await;
    // A closed socket frees its place.
    first.close().await;
    testkit::eventually(
        async || {
            let mut ws = Ws::open(&server, Protocol::TransportWs).await;
            ws.send(
                json!({ "type": "connection_init", "payload": { "authorization": &admin.token } }),
            )
            .await;
            matches!(ws.frame().await, Frame::Json(ack) if ack["type"] == "connection_ack")
        },
        Duration::from_secs(10),
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn the_telegram_webhook_answers_from_the_reserve_when_every_other_connection_is_taken() {
    use bot::config::BotConfig;
    use secrecy::SecretString;
    use testkit::telegram::FakeTelegram;

    let telegram = FakeTelegram::start().await;
    let bot = BotConfig::polling(SecretString::from("123456:TEST-token"))
        .unwrap()
        .with_api_url(telegram.url())
        .with_webhook(
            "https://desk.example/telegram/hook",
            Some(SecretString::from("webhook-secret")),
        )
        .unwrap();
    let mut config = test_config();
    config.server.max_connections = 6;
    config.server.reserved_connections = 2;
    config.server.header_read_timeout = Duration::from_secs(60);
    let app = testkit::TestApp::spawn(testkit::DatabaseName::fresh("api_webhook_reserve"), |s| {
        s.api = config;
        s.bot = Some(bot);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(app.addr(), [127, 0, 0, 6]).await);
    }
    let client = client_from([127, 0, 0, 7]);
    let graphql = client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(graphql.status(), 503);
    // The webhook's own answer (no secret: 401), not the server's refusal.
    let webhook = client
        .post(app.url("/telegram/hook"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 401);
    drop(held);
    drop(app.stop().await);
}

#[tokio::test]
async fn a_query_still_running_at_its_deadline_is_stopped_with_timeout() {
    let mut config = test_config();
    // Long enough for signing in (a password hash) on a busy machine.
    config.limits.request_timeout = Duration::from_secs(3);
    // The read-your-writes wait for a position the log never reaches would last longer.
    config.limits.consistency_timeout = Duration::from_secs(60);
    let server = Server::start_with("query_deadline", config).await;
    let admin = server.admin().await;
    let query = "query($at: String!) { agents(consistency: {atLeast: $at}) { email } }";
    let never = json!({ "at": "00000000ffffffff0000000000000000" });

    let started = Instant::now();
    let body = server.gql(Some(&admin.token), query, never.clone()).await;
    assert_eq!(code(&body), Some("TIMEOUT"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("took longer than 3 s"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A query over a WebSocket has the same deadline; the socket goes on.
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    let started = Instant::now();
    ws.subscribe("slow", query, never).await;
    assert_eq!(ws.error_code("slow").await, "TIMEOUT");
    ws.completed("slow").await;
    assert!(started.elapsed() < Duration::from_secs(10));
    ws.subscribe("me", "{ me { email } }", json!({})).await;
    assert_eq!(ws.data("me").await["me"]["email"], admin.email);
    ws.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_socket_whose_client_stops_reading_is_dropped_at_the_request_deadline() {
    let mut config = test_config();
    config.limits.request_timeout = Duration::from_secs(3);
    config.limits.max_sockets_per_caller = 1;
    let server = Server::start_with("stuck_reader", config).await;
    let admin = server.admin().await;
    // Large answers, far more than the buffers of a connection hold, that the client never
    // reads.
    let schema = "__schema { types { name description fields { name description args { name description } } } }";
    let large = format!("{{ a: {schema} b: {schema} c: {schema} d: {schema} }}");
    let mut stuck = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    for n in 0..100 {
        stuck.subscribe(&format!("q{n}"), &large, json!({})).await;
    }
    // The stuck socket holds the agent's one place until the server gives up on it.
    testkit::eventually(
        async || {
            let mut ws = Ws::open(&server, Protocol::TransportWs).await;
            ws.send(
                json!({ "type": "connection_init", "payload": { "authorization": &admin.token } }),
            )
            .await;
            matches!(ws.frame().await, Frame::Json(ack) if ack["type"] == "connection_ack")
        },
        Duration::from_secs(30),
    )
    .await;
    drop(stuck);
    server.stop().await;
}
