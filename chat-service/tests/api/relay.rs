//! A counting relay in front of the real user-service: it forwards every
//! gRPC call unchanged and counts them by method, so a test can see how many
//! calls a worker made (the process-wide metrics are shared by every test of
//! this binary, so they cannot tell).

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use axum::http;
use futures::future::BoxFuture;
use tonic::{body::Body, server::NamedService, transport::Channel};
use tower::ServiceExt;

#[derive(Clone)]
pub struct Relay {
    upstream: Channel,
    calls: Arc<Mutex<HashMap<String, u64>>>,
}

impl NamedService for Relay {
    const NAME: &'static str = "chat.user.v1.UserService";
}

impl tower::Service<http::Request<Body>> for Relay {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_owned();
        *self.calls.lock().unwrap().entry(method).or_default() += 1;
        let upstream = self.upstream.clone();
        Box::pin(async move {
            Ok(upstream
                .oneshot(request)
                .await
                .unwrap_or_else(|e| tonic::Status::unavailable(e.to_string()).into_http()))
        })
    }
}

/// A relay to the user-service at `upstream`; returns its URL and the call
/// counts by method name (`GetUser`, `GetUsers`, …).
pub async fn spawn(upstream: &str) -> (String, Arc<Mutex<HashMap<String, u64>>>) {
    let relay = Relay {
        upstream: Channel::from_shared(upstream.to_owned())
            .unwrap()
            .connect_lazy(),
        calls: Arc::default(),
    };
    let calls = relay.calls.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(relay)
            .serve_with_incoming(service_kit::grpc::incoming(listener)),
    );
    (url, calls)
}
