//! The gateway scenario's upstream: a bare hyper HTTP/1.1 keep-alive server that reads each
//! request's body and answers `200 ok`, whatever the method or path. It runs in a child process
//! (`warrant-bench upstream`, as the floor does) so that its CPU time and memory can be read
//! from `/proc` apart from the load generator's and the gateway's.

use http_body_util::{BodyExt as _, Full};
use hyper::Response;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};

use anyhow::Result;

use crate::process::{self, ChildServer};

/// What the upstream answers to every request.
pub const BODY: &[u8] = b"ok";

/// Parent side: starts `<this binary> upstream` and reads the port it prints.
pub async fn spawn() -> Result<ChildServer> {
    process::spawn_self("upstream").await
}

/// Child side (`warrant-bench upstream`): serves until stdin closes or it is killed.
pub fn serve_child() -> Result<()> {
    process::serve_self("upstream", |_port| {
        Ok(|req: hyper::Request<hyper::body::Incoming>| async move {
            // Read the body, as a real service would (the bench sends none).
            let _ = req.into_body().collect().await;
            let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            resp
        })
    })
}
