//! Reads a server-sent-events response: each event as (event, data), in
//! order, from a task; the channel closes when the response ends. Comment
//! lines (heartbeats) and data-less events are skipped.

use tokio::sync::mpsc;

/// The events of `response` as (event name, data), `message` when unnamed.
pub fn events(mut response: reqwest::Response) -> mpsc::UnboundedReceiver<(String, String)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block)
                    && tx.send(event).is_err()
                {
                    return;
                }
            }
        }
    });
    rx
}

/// One event block (the lines before a blank line), if it carries data.
fn parse(block: &str) -> Option<(String, String)> {
    let (mut event, mut data) = ("message".to_owned(), String::new());
    for line in block.lines() {
        if let Some(e) = line.strip_prefix("event:") {
            event = e.trim().to_owned();
        } else if let Some(d) = line.strip_prefix("data:") {
            data.push_str(d.trim_start());
        }
    }
    (!data.is_empty()).then_some((event, data))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn named_unnamed_and_heartbeat_blocks() {
        assert_eq!(
            parse("event: connection\ndata: {\"conn\":\"x\"}\n\n"),
            Some(("connection".into(), "{\"conn\":\"x\"}".into()))
        );
        assert_eq!(parse("data: {}\n\n"), Some(("message".into(), "{}".into())));
        assert_eq!(parse(": heartbeat\n\n"), None);
    }
}
