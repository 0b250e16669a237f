//! How a connection is served: what the HTTP/1 dispatcher runs for each request, and the
//! socket it reads.
//!
//! - [`ServeApp`]: `HEAD` is routed as `GET`. The dispatcher remembers the request was
//!   `HEAD` and sends the answer's status and headers, `Content-Length` included,
//!   without its body (RFC 9110 §9.3.2).
//! - [`Connection`]: the socket, with a deadline on the headers of every request after
//!   the first. actix's own timeout (`client_request_timeout`) covers only the first
//!   request of a connection: on a kept-alive connection, a client that has sent one
//!   byte of its next request could trickle the rest for ever. Here the headers of a
//!   later request must be complete within the same time, counted from their first
//!   byte; after that the connection is closed (there is no request to answer yet).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::{Extensions, Protocol, Request};
use actix_web::dev::{AppConfig, Service, ServiceFactory};
use actix_web::http::Method;
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The app as the dispatcher runs it: see the module documentation.
pub struct ServeApp<F> {
    factory: F,
}

impl<F> ServeApp<F> {
    pub fn new(factory: F) -> ServeApp<F> {
        ServeApp { factory }
    }
}

impl<F> ServiceFactory<Request> for ServeApp<F>
where
    F: ServiceFactory<Request, Config = AppConfig>,
    F::Future: 'static,
    <F::Service as Service<Request>>::Future: 'static,
{
    type Response = F::Response;
    type Error = F::Error;
    type Config = ();
    type Service = HeadAsGet<F::Service>;
    type InitError = F::InitError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Service, Self::InitError>>>>;

    fn new_service(&self, _: ()) -> Self::Future {
        // The default configuration: not TLS (the exchange serves plain HTTP behind its
        // proxy), and a host name used only for requests without a `Host` header.
        let service = self.factory.new_service(AppConfig::default());
        Box::pin(async move { service.await.map(HeadAsGet) })
    }
}

/// See [`ServeApp`].
pub struct HeadAsGet<S>(S);

impl<S> Service<Request> for HeadAsGet<S>
where
    S: Service<Request>,
    S::Future: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>>>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&self, mut req: Request) -> Self::Future {
        if req.head().method == Method::HEAD {
            req.head_mut().method = Method::GET;
        }
        let clock = req.conn_data::<Rc<HeadClock>>().cloned();
        if let Some(clock) = &clock {
            clock.request_began();
        }
        let answer = self.0.call(req);
        Box::pin(async move {
            let answer = answer.await;
            if let Some(clock) = clock {
                clock.request_answered();
            }
            answer
        })
    }
}

/// Where a connection is between requests, as the app sees it: shared by the
/// [`Connection`] and the app's requests on it (through the connection's data).
#[derive(Debug, Default)]
pub struct HeadClock {
    /// Requests begun on the connection.
    begun: Cell<u64>,
    /// A request is being answered (its body may still be read).
    answering: Cell<bool>,
}

impl HeadClock {
    fn request_began(&self) {
        self.begun.set(self.begun.get() + 1);
        self.answering.set(true);
    }

    fn request_answered(&self) {
        self.answering.set(false);
    }

    /// Bytes read now belong to the headers of a request after the first.
    fn awaiting_later_headers(&self) -> bool {
        self.begun.get() > 0 && !self.answering.get()
    }
}

/// A client's socket: see the module documentation.
pub struct Connection {
    io: TcpStream,
    clock: Rc<HeadClock>,
    timeout: Duration,
    /// The deadline of the headers being read, and the request count it was set at.
    deadline: Option<(u64, Pin<Box<tokio::time::Sleep>>)>,
}

impl Connection {
    pub fn new(io: TcpStream, header_read_timeout: Duration) -> Connection {
        Connection {
            io,
            clock: Rc::new(HeadClock::default()),
            timeout: header_read_timeout,
            deadline: None,
        }
    }

    /// What the connection hands the app's requests (`on_connect_ext`).
    pub fn share_clock(&self, data: &mut Extensions) {
        data.insert(self.clock.clone());
    }

    /// Accepts a TCP connection for the HTTP/1 service.
    pub fn accept(
        io: TcpStream,
        header_read_timeout: Duration,
    ) -> (Connection, Protocol, Option<SocketAddr>) {
        let peer = io.peer_addr().ok();
        (
            Connection::new(io, header_read_timeout),
            Protocol::Http1,
            peer,
        )
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let begun = this.clock.begun.get();
        if !this.clock.awaiting_later_headers()
            || this.deadline.as_ref().is_some_and(|(at, _)| *at != begun)
        {
            this.deadline = None;
        }
        if !this.clock.awaiting_later_headers() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        if let Some((_, deadline)) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request's headers did not arrive in time",
                )));
            }
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.deadline.is_none()
            && matches!(read, Poll::Ready(Ok(())))
            && buf.filled().len() > before
        {
            let mut deadline = Box::pin(tokio::time::sleep(this.timeout));
            // Polled once so that it wakes this connection when it passes.
            let _ = deadline.as_mut().poll(cx);
            this.deadline = Some((begun, deadline));
        }
        read
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_headers_of_later_requests_are_timed_here() {
        let clock = HeadClock::default();
        // The first request's headers are actix's to time.
        assert!(!clock.awaiting_later_headers());
        clock.request_began();
        assert!(!clock.awaiting_later_headers(), "its body is the app's");
        clock.request_answered();
        assert!(clock.awaiting_later_headers());
        clock.request_began();
        assert!(!clock.awaiting_later_headers());
    }
}
