//! A small GraphQL-over-WebSocket client speaking either protocol, with a timeout on every
//! wait so a broken server fails a test instead of hanging it.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::Server;

/// How long any single wait lasts.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`: subscribe / next / complete.
    TransportWs,
    /// The legacy `graphql-ws`: start / data / stop.
    Legacy,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::Legacy => "graphql-ws",
        }
    }
}

/// How the server ended a connection or answered a frame.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(Option<u16>),
}

pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: Protocol,
}

impl Ws {
    /// Opens `/graphql/ws` with `protocol` (no `connection_init` yet).
    pub async fn open(server: &Server, protocol: Protocol) -> Ws {
        let mut request = format!("ws://{}/graphql/ws", server.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(protocol.name()),
        );
        let (socket, response) =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
                .await
                .expect("connecting timed out")
                .unwrap();
        assert_eq!(
            response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol.name())
        );
        Ws { socket, protocol }
    }

    /// Opens and initializes with `token`, asserting `connection_ack`.
    pub async fn connect(server: &Server, protocol: Protocol, token: &str) -> Ws {
        let mut ws = Ws::open(server, protocol).await;
        ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }))
            .await;
        match ws.frame().await {
            Frame::Json(ack) => assert_eq!(ack["type"], "connection_ack", "{ack}"),
            Frame::Closed(code) => panic!("closed instead of ack: {code:?}"),
        }
        ws
    }

    pub async fn send(&mut self, value: Value) {
        self.socket
            .send(Message::Text(value.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame (keep-alives skipped), or how the connection closed.
    pub async fn frame(&mut self) -> Frame {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("no frame from the server in time");
            match message {
                None | Some(Err(_)) => return Frame::Closed(None),
                Some(Ok(Message::Close(frame))) => {
                    return Frame::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    match value["type"].as_str() {
                        Some("ka") => {}
                        Some("ping") => self.send(json!({ "type": "pong" })).await,
                        _ => return Frame::Json(value),
                    }
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Starts operation `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::Legacy => "start",
        };
        self.send(json!({ "type": kind, "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// Stops operation `id`.
    pub async fn stop(&mut self, id: &str) {
        let kind = match self.protocol {
            Protocol::TransportWs => "complete",
            Protocol::Legacy => "stop",
        };
        self.send(json!({ "type": kind, "id": id })).await;
    }

    /// The next result of operation `id` (`{data, errors}`), failing on anything else.
    pub async fn next(&mut self, id: &str) -> Value {
        let data = match self.protocol {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        };
        loop {
            match self.frame().await {
                Frame::Json(value) if value["type"] == data && value["id"] == id => {
                    return value["payload"].clone();
                }
                Frame::Json(value) if value["id"] != id => {}
                other => panic!("expected `{data}` for {id}, got {other:?}"),
            }
        }
    }

    /// The next result's data, failing on errors.
    pub async fn data(&mut self, id: &str) -> Value {
        let payload = self.next(id).await;
        assert!(payload.get("errors").is_none(), "errors: {payload:#}");
        payload["data"].clone()
    }

    /// The `extensions.code` of the error operation `id` gets, whatever the protocol's frame
    /// (`error`, or `next`/`data` carrying `errors`).
    pub async fn error_code(&mut self, id: &str) -> String {
        loop {
            match self.frame().await {
                Frame::Json(value) if value["id"] == id => {
                    let errors = match value["type"].as_str() {
                        Some("error") => value["payload"].clone(),
                        _ => value["payload"]["errors"].clone(),
                    };
                    let first = if errors.is_array() {
                        errors[0].clone()
                    } else {
                        errors
                    };
                    return first["extensions"]["code"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no error code in {value}"))
                        .to_owned();
                }
                Frame::Json(value) if value["id"] != id => {}
                other => panic!("expected an error for {id}, got {other:?}"),
            }
        }
    }

    /// Asserts the server ends operation `id` (`complete` in either protocol).
    pub async fn completed(&mut self, id: &str) {
        loop {
            match self.frame().await {
                Frame::Json(value) if value["type"] == "complete" && value["id"] == id => return,
                Frame::Json(value) if value["id"] != id => {}
                other => panic!("expected `complete` for {id}, got {other:?}"),
            }
        }
    }

    /// Asserts nothing arrives for `for_how_long`.
    pub async fn quiet(&mut self, for_how_long: Duration) {
        if let Ok(message) = tokio::time::timeout(for_how_long, self.socket.next()).await {
            panic!("expected silence, got {message:?}");
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
