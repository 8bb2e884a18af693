//! How the outbound client reaches a host: straight, or through the HTTP proxy that the
//! environment names for it (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, as curl
//! reads them).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the TCP connection of one call; TLS, when the URL asks for it, goes on top.
///
/// Through a proxy the connection is a `CONNECT` tunnel for `https` and `http` hosts alike,
/// so the proxy never sees a request, its token or its body.
#[derive(Clone)]
pub(super) struct Connect {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

impl Connect {
    pub(super) fn new(direct: HttpConnector, proxies: Matcher) -> Self {
        Self {
            direct,
            proxies: Arc::new(proxies),
        }
    }
}

impl Service<Uri> for Connect {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, host: Uri) -> Self::Future {
        match self.proxies.intercept(&host) {
            None => {
                let connecting = self.direct.call(host);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Some(proxy) => {
                // The tunnel asks for port 443 when the URL names none, right only for https.
                let host = with_port(host);
                let mut tunnel = Tunnel::new(proxy.uri().clone(), self.direct.clone());
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Box::pin(async move {
                    tunnel
                        .call(host)
                        .await
                        .map_err(|e| format!("through the proxy: {e}").into())
                })
            }
        }
    }
}

/// `host` with its scheme's port written out.
fn with_port(host: Uri) -> Uri {
    if host.port().is_some() {
        return host;
    }
    let port = if host.scheme_str() == Some("http") {
        80
    } else {
        443
    };
    let (Some(scheme), Some(name)) = (host.scheme_str(), host.host()) else {
        return host;
    };
    format!("{scheme}://{name}:{port}").parse().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tunnel_is_asked_for_the_port_of_the_scheme_when_the_url_names_none() {
        let port = |uri: &str| with_port(uri.parse().unwrap()).to_string();
        assert_eq!(
            port("http://hooks.example.com"),
            "http://hooks.example.com:80/"
        );
        assert_eq!(
            port("https://gate.whapi.cloud"),
            "https://gate.whapi.cloud:443/"
        );
        assert_eq!(port("http://10.0.0.5:8080"), "http://10.0.0.5:8080/");
        assert_eq!(port("http://[::1]"), "http://[::1]:80/");
    }
}
