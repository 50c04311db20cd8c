//! `probe URL`: exits 0 when an HTTP GET of URL answers 2xx, 1 otherwise.
//! Container health checks use it, so the runtime image needs no curl.

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

fn main() {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PROBE_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:9090/readyz".to_owned());
    match probe(&url) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("probe {url}: {e}");
            std::process::exit(1);
        }
    }
}

fn probe(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = host
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("host does not resolve")?;
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    let status = std::str::from_utf8(&head[9..12]).map_err(|e| e.to_string())?;
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}
