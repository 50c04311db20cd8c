//! The access log (at debug level): method, path, status and time, with
//! credentials in the query string redacted. Browsers once had to put their
//! token in `/ws?token=`; a log line must never carry it, or a ticket.

use std::time::Instant;

use axum::{extract::Request, http::Uri, middleware::Next, response::Response};

/// Query parameters whose values never reach a log.
const SECRET_PARAMS: [&str; 3] = ["token", "ticket", "access_token"];

/// `uri`'s path and query with every secret parameter's value replaced.
pub fn redacted(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMS.contains(&name.to_ascii_lowercase().as_str()) => {
                format!("{name}=REDACTED")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

pub async fn log(request: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let uri = redacted(request.uri());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        uri,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        let uri: Uri = "/ws?token=eyJhbGciOi.secret.sig&x=1&Ticket=abc"
            .parse()
            .unwrap();
        let logged = redacted(&uri);
        assert_eq!(logged, "/ws?token=REDACTED&x=1&Ticket=REDACTED");
        assert!(!logged.contains("secret"));
        let plain: Uri = "/api/rooms".parse().unwrap();
        assert_eq!(redacted(&plain), "/api/rooms");
    }
}
