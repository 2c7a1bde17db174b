//! Failed sign-ins: growing delays per address, per account and address, and per account,
//! which a device that signed in before passes. Clients connect from distinct loopback
//! addresses (127.0.0.2, 127.0.0.3, …, all local on Linux), as attackers on other machines
//! would.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use domain::agent::Role;
use serde_json::{Value, json};

use crate::support::{PASSWORD, Server, code, test_config};

const LOGIN: &str = "mutation($email: String!, $password: String!, $device: String) {
    login(input: {email: $email, password: $password, deviceToken: $device}) {
        accessToken deviceToken } }";

/// An HTTP client whose connections come from `127.0.0.<n>`.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .build()
        .unwrap()
}

/// A sign-in from `client`; the body and the `Set-Cookie` header.
async fn login(
    server: &Server,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    device: Option<&str>,
    cookie: Option<&str>,
) -> (Value, Option<String>) {
    let mut request = client.post(server.url()).json(&json!({
        "query": LOGIN,
        "variables": {"email": email, "password": password, "device": device},
    }));
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("theme=dark; ledgerdesk_device={cookie}"));
    }
    let response = request.send().await.unwrap();
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.json().await.unwrap(), set_cookie)
}

fn retry_after(body: &Value) -> u64 {
    body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn an_attacker_rotating_addresses_cannot_lock_the_owner_out_of_a_known_device() {
    let mut config = test_config();
    config.auth.logins_per_ip_per_minute = 20;
    config.auth.logins_per_account_per_minute = 2;
    config.auth.logins_per_account_any_address_per_minute = 3;
    config.auth.login_max_delay = Duration::from_secs(2);
    let server = Server::start_with("throttle_owner", config).await;
    server.agent(Role::Admin, "owner@example.com").await;
    server.agent(Role::Agent, "other@example.com").await;
    let owner = client_from(1);
    let (body, _) = login(
        &server,
        &client_from(5),
        "other@example.com",
        PASSWORD,
        None,
        None,
    )
    .await;
    let other_device = body["data"]["login"]["deviceToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // The owner's device signs in once: a device token in the payload, the same in an
    // HttpOnly cookie.
    let (body, set_cookie) =
        login(&server, &owner, "owner@example.com", PASSWORD, None, None).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let device = body["data"]["login"]["deviceToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let set_cookie = set_cookie.expect("a device cookie");
    assert!(
        set_cookie.starts_with(&format!("ledgerdesk_device={device};")),
        "{set_cookie}"
    );
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/graphql"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }

    // One wrong password a round, from two addresses in turn; the owner signs in every round.
    let attackers = [client_from(2), client_from(3)];
    let mut attacker_codes = Vec::new();
    for round in 0..12 {
        let (body, _) = login(
            &server,
            &attackers[round % 2],
            "owner@example.com",
            "not the password",
            None,
            None,
        )
        .await;
        attacker_codes.push(code(&body).unwrap().to_owned());
        // With the token in the input on even rounds, with the cookie alone on odd ones.
        let (token, cookie) = if round % 2 == 0 {
            (Some(device.as_str()), None)
        } else {
            (None, Some(device.as_str()))
        };
        let (body, _) = login(
            &server,
            &owner,
            "owner@example.com",
            PASSWORD,
            token,
            cookie,
        )
        .await;
        assert!(
            body.get("errors").is_none(),
            "round {round}: the owner was refused: {body:#}"
        );
    }
    assert!(
        attacker_codes.iter().any(|code| code == "RATE_LIMITED"),
        "{attacker_codes:?}"
    );
    assert!(
        attacker_codes
            .iter()
            .all(|code| code == "RATE_LIMITED" || code == "UNAUTHENTICATED"),
        "{attacker_codes:?}"
    );

    // One more failure from a new address, once the account's delay allows one to count, so
    // that a delay starts now.
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in 10.. {
        assert!(Instant::now() < deadline, "no failure counted");
        let (body, _) = login(
            &server,
            &client_from(n),
            "owner@example.com",
            "nope",
            None,
            None,
        )
        .await;
        if code(&body) == Some("UNAUTHENTICATED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A device that never signed in to this account waits, even with the right password...
    let (body, _) = login(
        &server,
        &client_from(4),
        "owner@example.com",
        PASSWORD,
        None,
        None,
    )
    .await;
    assert_eq!(code(&body), Some("RATE_LIMITED"), "{body:#}");
    // ...and so does one holding another account's device token.
    let (body, _) = login(
        &server,
        &client_from(5),
        "owner@example.com",
        PASSWORD,
        Some(&other_device),
        None,
    )
    .await;
    assert_eq!(code(&body), Some("RATE_LIMITED"), "{body:#}");
    // A forged device token is no better.
    let at = device.len() - 10;
    let swapped = if &device[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swapped}{}", &device[..at], &device[at + 1..]);
    let (body, _) = login(
        &server,
        &client_from(6),
        "owner@example.com",
        PASSWORD,
        Some(&forged),
        None,
    )
    .await;
    assert_eq!(code(&body), Some("RATE_LIMITED"), "{body:#}");
    server.stop().await;
}

#[tokio::test]
async fn an_address_failing_at_an_account_waits_twice_as_long_each_time() {
    let mut config = test_config();
    config.auth.logins_per_account_per_minute = 2;
    let server = Server::start_with("throttle_backoff", config).await;
    server.agent(Role::Agent, "ann@example.com").await;
    let attacker = client_from(2);
    let owner = client_from(1);
    let wrong = |client| login(&server, client, "ann@example.com", "wrong", None, None);

    // Two failures a minute are free; the third starts the delays.
    for _ in 0..3 {
        assert_eq!(code(&wrong(&attacker).await.0), Some("UNAUTHENTICATED"));
    }
    let mut waits = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while waits.len() < 3 {
        let (body, _) = wrong(&attacker).await;
        waits.push(retry_after(&body));
        // Meanwhile the owner, from their own address, is not held at all.
        let (body, _) = login(&server, &owner, "ann@example.com", PASSWORD, None, None).await;
        assert!(body.get("errors").is_none(), "{body:#}");
        // Try again until the delay is over (the failure then counted starts a longer one).
        loop {
            assert!(
                Instant::now() < deadline,
                "the delays never ended: {waits:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (body, _) = wrong(&attacker).await;
            match code(&body) {
                Some("RATE_LIMITED") => {}
                Some("UNAUTHENTICATED") => break,
                other => panic!("unexpected {other:?}: {body:#}"),
            }
        }
    }
    assert_eq!(waits, [1, 2, 4]);
    server.stop().await;
}

#[tokio::test]
async fn an_address_failing_at_many_accounts_is_delayed_for_all_of_them() {
    let mut config = test_config();
    config.auth.logins_per_ip_per_minute = 3;
    let server = Server::start_with("throttle_ip", config).await;
    server.agent(Role::Agent, "ann@example.com").await;
    let sprayer = client_from(2);
    for n in 0..4 {
        let email = format!("guess{n}@example.com");
        let (body, _) = login(&server, &sprayer, &email, "password1234", None, None).await;
        assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body:#}");
    }
    let (body, _) = login(&server, &sprayer, "ann@example.com", PASSWORD, None, None).await;
    assert_eq!(code(&body), Some("RATE_LIMITED"), "{body:#}");
    assert!(retry_after(&body) >= 1);
    // Other addresses are not held.
    let (body, _) = login(
        &server,
        &client_from(3),
        "ann@example.com",
        PASSWORD,
        None,
        None,
    )
    .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    server.stop().await;
}

#[tokio::test]
async fn signing_in_over_a_websocket_is_refused_so_no_throttle_is_bypassed() {
    use crate::ws::{Protocol, Ws};

    let server = Server::start("throttle_ws").await;
    let admin = server.admin().await;
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe(
        "login",
        "mutation { login(input: {email: \"admin@example.com\", password: \"guess\"}) {
            accessToken } }",
        json!({}),
    )
    .await;
    assert_eq!(ws.error_code("login").await, "VALIDATION");
    ws.close().await;
    server.stop().await;
}
